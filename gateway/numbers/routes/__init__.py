"""The numbers API's routes, one module per concern; router.py assembles them."""
