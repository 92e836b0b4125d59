# Shared fixtures for tests against the real local stack (see komponent_runtime.testing).
pytest_plugins = ["komponent_runtime.testing"]
