"""Transformation functions (``transformation.function``): JavaScript or Python ``transform``
run in sandboxed persistent workers. ``docs/functions.md`` is the user's side of it.

- :mod:`~sluice.functions.transformer`: what runs and previews use (``FunctionTransformer``)
  and what validation asks (``check_source``, ``installed_languages``);
- :mod:`~sluice.functions.pool`: the workers, their batches and limits;
- :mod:`~sluice.functions.worker`, :mod:`~sluice.functions.sandbox`,
  :mod:`~sluice.functions.javascript`: the worker process, its cage and its V8.

Nothing is imported here: a worker starts with the few modules it needs.
"""
