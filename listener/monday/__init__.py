"""The Monday edge: everything that knows how Monday's API behaves.

`api` builds GraphQL documents, sends them over one aiohttp session and reads replies; `errors`
turns Monday's failures into typed exceptions by pure rules; `governor` keeps every listener of
a database inside the account's complexity and request budget, together.
"""
