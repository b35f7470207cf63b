"""One model of OCI content: media types, descriptors, manifests and indexes, references, layouts.

Pure values and file formats; it imports nothing of socle but its errors and the
small atomic-write and canonical-JSON modules, so every layer can use it.
"""
