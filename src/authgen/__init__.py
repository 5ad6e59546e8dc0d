"""authgen: a GraphQL authentication service generated from one YAML user model."""

__version__ = "0.2.0"
