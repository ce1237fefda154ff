// The admin console (web/admin.html): filled in by the commit that builds it.
