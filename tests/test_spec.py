"""spec/ stays true: the generated op reference matches the registry."""

import pathlib

from tensorweave.ir.docs import render

SPEC = pathlib.Path(__file__).resolve().parents[1] / "spec"


def test_op_reference_is_current():
    text = (SPEC / "ir-ops.md").read_text()
    assert text.strip() == render().strip(), (
        "spec/ir-ops.md is stale: python -m tensorweave.ir.docs > spec/ir-ops.md"
    )
