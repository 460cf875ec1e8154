"""The people who act: accounts, roles over scopes, passwords, signed links (the workspace)."""
