"""S3 artifact storage: versioned layout, verified parallel transfers, presigned URLs."""
