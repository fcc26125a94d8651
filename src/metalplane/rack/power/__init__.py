"""Power control of machines through their BMCs (run on the rack).

The power types and their parameters (what the region validates and what the
drivers run) are part of the region-rack contract: :mod:`metalplane.rpc.power_schema`.

Layout:

* :mod:`.errors`  -- the error classes every driver raises (pure).
* :mod:`.base`    -- the small driver interface (validate, query, on, off, cycle).
* :mod:`.ipmi`, :mod:`.redfish`, :mod:`.webhook`, :mod:`.manual` -- drivers.
* :mod:`.drivers` -- the registry: power type name -> driver instance.
* :mod:`.policy`  -- pure decisions: retries, backoff, BMC health, poll spread.
* :mod:`.runner`  -- the rack's executor: timeouts, retries, one call per BMC,
  backoff, and the background poller.

This package's ``__init__`` imports nothing, so ``metalplane.rack.power.errors``
stays cheap to import.
"""
