"""Reading what the web sends: feeds (`feeds`), sitemaps (`sitemaps`), article pages
(`extract`) and their published dates (`dates`). Bytes in, plain values out; nothing here
fetches or stores, and bad input is reported in the result, never raised."""
