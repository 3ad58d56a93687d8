"""The management API's routes, one Powertools `Router` per concern; `functions/api/app.py` wires them."""
