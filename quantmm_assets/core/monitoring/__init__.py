"""Monitoring of served models: drift of the live predictions against a version's reference distribution."""
