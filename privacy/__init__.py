"""Everything that touches identities or keys lives here, so a reviewer can audit it in one place.

BSN checks, keyed hashing (partner linkage pseudonyms and, later, hub person ids), key files,
recipient pseudonyms and the signing/encryption of outgoing files. No other package reads key
material directly; they receive what they need (e.g. bound SQL parameters) from these modules.
"""
