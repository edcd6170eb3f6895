"""Generic spiders driven by validated source configuration."""
