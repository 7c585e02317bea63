"""A minimal Django project configured in code: no database, no templates."""
