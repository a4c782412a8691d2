"""operationId targets: thin handlers, one module per resource."""
