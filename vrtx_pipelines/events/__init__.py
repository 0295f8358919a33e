"""Domain events for the CRM: recorded with the change they describe, delivered signed to its callback."""
