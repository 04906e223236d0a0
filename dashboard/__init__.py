"""Marketer dashboard: Flask blueprints, Jinja2 templates and static assets."""
