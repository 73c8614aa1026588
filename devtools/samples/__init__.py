"""Sample data generators and a local HTTP server for development and tests."""
