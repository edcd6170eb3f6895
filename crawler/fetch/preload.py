"""Imported once by the fork server of the extraction workers (``crawler.fetch.workers``): the
extraction code is loaded and warmed up there, so that every worker forked from it starts
ready."""

from crawler.fetch.workers import warm_up

warm_up()
