"""The admin site's identity. Every app registers its own models in its ``admin.py``; the audit app adds
the dashboard (``/admin/dashboard/``) and GDPR pages (``/admin/gdpr/``)."""

from django.contrib import admin

admin.site.site_header = "EasyPay back office"
admin.site.site_title = "EasyPay admin"
admin.site.index_title = "Back office"
# The collapsible app list on the left takes 275 px of every page; the breadcrumbs and the index do
# its job, and changelists need the width (they must fit from 1,280 px without scrolling sideways).
admin.site.enable_nav_sidebar = False
