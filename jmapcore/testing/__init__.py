"""Helpers shipped for plugin and backend authors: an in-process client
(:mod:`jmapcore.testing.client`) and the backend conformance suite
(:mod:`jmapcore.testing.backend_conformance`)."""
