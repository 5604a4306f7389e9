"""Small, realistic plugin modules that the kernel tests register explicitly.

They are modules (not classes) on purpose: that is how real plugins are shipped, with a
``PLUGIN_INFO`` and module-level ``@hookimpl`` functions. Keep them stateless: a module is
imported once per test session.
"""
