"""`manage.py runtime_bootstrap`: the `local` pool and flavors sized to this machine (idempotent)."""
from django.core.management.base import BaseCommand

from apps.runtime.services import runtime_bootstrap


class Command(BaseCommand):
    help = "Create the local pool and flavors sized to this machine, when they do not exist yet."

    def handle(self, *args, **options):
        created = runtime_bootstrap()
        if not created["pools"] and not created["flavors"]:
            self.stdout.write("Resources already set up; nothing created.")
            return
        if created["pools"]:
            self.stdout.write(f"Created pool(s): {', '.join(created['pools'])}")
        if created["flavors"]:
            self.stdout.write(f"Created flavor(s): {', '.join(created['flavors'])}")
