pytest_plugins = ["crmkit.testing"]
