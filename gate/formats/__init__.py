"""Weight-file formats: detection by content, safetensors validation, pickle scanning, conversion."""
