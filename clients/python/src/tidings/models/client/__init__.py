# Message models generated from schema/ by clients/python/scripts/generate (datamodel-code-generator); do not edit.
