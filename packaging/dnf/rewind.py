# rewind: one LVM snapshot set before each dnf 4 transaction (docs/HOOKS.md). dnf loads this
# file from its plugin directory (dnf.const.PLUGINPATH); /etc/dnf/plugins/rewind.conf can
# switch it off (enabled=0). The resolved transaction goes to `rewind hook dnf pre` on its
# standard input ("in ACTION NAME EVR" / "out ACTION NAME EVR" lines); a non-zero exit
# (only with [hooks] on_failure = "stop") stops dnf before the transaction. After a
# transaction that went through, `rewind hook dnf post` gets where the packages are now
# ("now NAME EVR" lines, from rpm's database) and records it.
# Without the rewind binary (removed by hand) the plugin does nothing.
"""rewind: a snapshot set before each dnf transaction."""

import os
import subprocess
import sys

import dnf
import dnf.exceptions
import dnf.transaction
import rpm

REWIND = "/usr/sbin/rewind"

ACTIONS = {
    dnf.transaction.PKG_INSTALL: "install",
    dnf.transaction.PKG_UPGRADE: "upgrade",
    dnf.transaction.PKG_DOWNGRADE: "downgrade",
    dnf.transaction.PKG_REINSTALL: "reinstall",
    dnf.transaction.PKG_OBSOLETE: "obsolete",
    dnf.transaction.PKG_UPGRADED: "upgraded",
    dnf.transaction.PKG_DOWNGRADED: "downgraded",
    dnf.transaction.PKG_OBSOLETED: "obsoleted",
    dnf.transaction.PKG_REMOVE: "remove",
}


class Rewind(dnf.Plugin):
    """Runs `rewind hook dnf pre` before the transaction and `post` after it."""

    name = "rewind"

    def _runs(self):
        if not os.access(REWIND, os.X_OK):
            return False
        if os.path.realpath(self.base.conf.installroot) != "/":
            sys.stderr.write(
                "rewind: no snapshot set taken: dnf installs into %s, not this system\n"
                % self.base.conf.installroot
            )
            return False
        return True

    def pre_transaction(self):
        if not self._runs():
            return
        lines = ["command " + " ".join(sys.argv)]
        for tsi in self.base.transaction:
            if tsi.action in dnf.transaction.FORWARD_ACTIONS:
                way = "in"
            elif tsi.action in dnf.transaction.BACKWARD_ACTIONS:
                way = "out"
            else:
                continue
            lines.append(
                "%s %s %s %s"
                % (way, ACTIONS.get(tsi.action, "other"), tsi.pkg.name, tsi.pkg.evr)
            )
        done = subprocess.run(
            [REWIND, "hook", "dnf", "pre"],
            input="\n".join(lines) + "\n",
            universal_newlines=True,
            check=False,
        )
        if done.returncode != 0:
            raise dnf.exceptions.Error(
                "rewind: no rollback point could be taken (see above); "
                "dnf stops before the transaction"
            )

    def transaction(self):
        if not self._runs():
            return
        # Where each package of the transaction is now, from rpm's database ("now NAME
        # EVR"; a package removed has no line).
        names = sorted({tsi.pkg.name for tsi in self.base.transaction})
        lines = []
        ts = rpm.TransactionSet(self.base.conf.installroot)
        for name in names:
            for h in ts.dbMatch("name", name):
                evr = "%s-%s" % (h["version"], h["release"])
                if h["epoch"]:
                    evr = "%s:%s" % (h["epoch"], evr)
                lines.append("now %s %s" % (name, evr))
        subprocess.run(
            [REWIND, "hook", "dnf", "post"],
            input="\n".join(lines) + "\n",
            universal_newlines=True,
            check=False,
        )
