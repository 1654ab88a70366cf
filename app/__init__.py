"""Hilum: a desktop clinical imaging workstation with on-device AI."""

__version__ = "0.1.0"
