"""The web console at ``/ui``: pages rendered on the server, for the admin key alone."""
