"""Model signing and verification (OpenSSF Model Signing bundles, detached RSA-PSS signatures)."""
