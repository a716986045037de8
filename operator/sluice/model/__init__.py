"""The resource model: schema types, resource specs and their validation. Pure: no I/O."""
