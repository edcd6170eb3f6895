"""The service around the crawler: command line, configuration, scheduling and delivery.

Exceptions raised by this package::

    SchedulerError
     +-- ConfigError       the config file is missing, unreadable or invalid (scheduler.config);
                           `.problems` lists every problem as `FILE:LINE: key.path: message`

A module that adds an exception derives it from SchedulerError and adds it to this tree.
"""


class SchedulerError(Exception):
    """Base of every error this package raises on purpose."""
