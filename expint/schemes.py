"""The scheme catalogue.

>>> import expint
>>> [s.name for s in expint.schemes.catalog()][:3]
['lawson_euler', 'lawson_rk2', 'lawson_rk4']
"""

from __future__ import annotations

from ._schemes._catalog import Scheme, catalog, get, names, table
from ._schemes._phiexpr import PhiExpr
from ._schemes._tableau import ExpRKTableau

__all__ = ["ExpRKTableau", "PhiExpr", "Scheme", "catalog", "get", "names", "table"]
