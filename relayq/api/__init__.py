"""The HTTP API server (`relayq-server`): a Flask app (`create_app`) with one blueprint per
resource, served by granian (relayq.api.cli, relayq.api.bridge). Every view validates its
input and calls the same `Queue` operations as the CLI and the worker; nothing here talks to
Redis about jobs in any other way."""
