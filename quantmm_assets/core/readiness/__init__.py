"""The readiness audit: coverage of each data kind, and its daily grid."""
