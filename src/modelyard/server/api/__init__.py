"""REST routers, one per kind of object: health, studies and trials, models and versions, comparisons."""
