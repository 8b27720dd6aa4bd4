"""Generated from protos/siogw_api/v1 by protos/generate.py: do not edit."""
