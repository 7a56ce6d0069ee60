"""Math written once against an Array-API namespace; imports only tensorweave.ir."""
