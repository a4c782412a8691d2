"""A TMF656 v4 conformance kit: checks any Service Problem Management server from outside, over HTTP only.

`tmf-server conformance BASE_URL` runs it (docs/conformance.md). It knows the target only by its URL; what a
server must do comes from the official TMF656 v4.0.0 document (`openapi/official/`) and TMF630.
"""
