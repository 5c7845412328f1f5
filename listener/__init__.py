"""npd-sync: mirror PostgreSQL rows onto Monday.com boards."""

__version__ = "0.1.0"
