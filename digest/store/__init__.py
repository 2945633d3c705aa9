"""Storage: the models, the one transaction helper, column length policies, migrations."""
