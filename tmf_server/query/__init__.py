"""TMF630 query language (fields, filters, sort, paging) translated into canonical MongoDB queries."""
