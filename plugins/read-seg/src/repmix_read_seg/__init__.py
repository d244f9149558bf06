"""READ: reasoning to attend (similarity maps -> point prompts) for repmix."""
