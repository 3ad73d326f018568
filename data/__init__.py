"""What models are compared on: dataset loaders, validation of untrusted input, caches."""
