#!/usr/bin/env python3
"""Fills a freshly bootstrapped Keystone/Baton SQLite database for scripts/bench-scale.sh.

    python scripts/bench-scale-fill.py DB N COUNTS_JSON

Needs Python's `bcrypt` (the interop venv has it) for the measured user's password. DB was made by
`baton manage db_sync / fernet_setup / bootstrap` (its admin user, admin project and the default
roles member/reader/manager are read from it). Writes, with Keystone's columns, in one
transaction (journal and fsync off while it runs, the journal mode restored after):

  * users in domain 'default' (user + local_user rows, no password) until the user table holds N;
  * projects in domain 'default' until there are N/10 (domains not counted): 20 % in chains 5 deep
    (parent_id chains, the deepest Keystone allows below a domain), 40 % under 4 "wide" parents
    (thousands of children each at 1,000,000 users), the rest flat (parent_id = 'default', as
    the bootstrap 'admin' project);
  * max(2000, N/100) filler groups, each filler user a member of one;
  * role assignments until the assignment table holds N: 85 % users on projects, 12 % groups on
    projects, 2 % users on the domain, 1 % groups on the domain, a few inherited (1 % of the
    user ones on projects, 2 % of the group ones, 10 % of the domain ones); roles member 60 %,
    reader 30 %, manager 10 %;
  * the MEASURED user, identical at every N: `scale-user`, password `scale-pass` (a bcrypt cost 4
    password row in the format and with the columns of admin's), a member of 2,000 groups of its
    own (`scale-group-0000`..) of which 50 hold 'member' on projects, 5 of them inherited on the
    roots of 5 chains; 20 direct assignments; `scale-project` is the depth-5 end of chain 0, with
    a direct 'member' and (through scale-group-0000) an inherited 'member' on the chain's root.
    Filler group assignments never name the measured user's groups, so its listings return the
    same items at every N. Admin gets nothing.

Fixed seed (18). Prints the row counts and writes them as JSON to COUNTS_JSON.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time

import bcrypt

SEED = 18
MEASURED_USER, MEASURED_PASSWORD, MEASURED_PROJECT = "scale-user", "scale-pass", "scale-project"
# The typical user: three groups, one role on scale-project (validation and issue are measured
# with it; the listings with scale-user).
TYPICAL_USER = "scale-typical"
MEASURED_GROUPS = 2000
CHAIN_DEPTH = 5
WIDE_PARENTS = 4
BATCH = 50000


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    db, n, counts_out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if n < 2000:
        print("bench-scale-fill: N must be at least 2000 (the measured user's projects must exist)", file=sys.stderr)
        return 2
    t_start = time.monotonic()
    rnd = random.Random(SEED)

    def new_id() -> str:
        return rnd.randbytes(16).hex()

    con = sqlite3.connect(db, isolation_level=None)
    journal = con.execute("PRAGMA journal_mode").fetchone()[0]
    con.execute("PRAGMA journal_mode = OFF")
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA cache_size = -1000000")  # 1 GB of page cache while filling
    con.execute("BEGIN")

    def insert(sql: str, rows) -> None:
        rows = list(rows)
        for i in range(0, len(rows), BATCH):
            con.executemany(sql, rows[i:i + BATCH])

    roles = dict(con.execute("SELECT name, id FROM role WHERE domain_id = '<<null>>'").fetchall())
    member, reader, manager = roles["member"], roles["reader"], roles["manager"]
    # Copy what bootstrap wrote for admin, so the new rows look like Keystone's own.
    admin_id, admin_created = con.execute(
        "SELECT u.id, u.created_at FROM user u JOIN local_user lu ON lu.user_id = u.id WHERE lu.name = 'admin'").fetchone()
    lu_cols = con.execute("SELECT failed_auth_count FROM local_user WHERE user_id = ?", (admin_id,)).fetchone()
    pw = con.execute(
        "SELECT p.expires_at, p.self_service, p.password_hash, p.created_at_int, p.expires_at_int, p.created_at "
        "FROM password p JOIN local_user lu ON lu.id = p.local_user_id WHERE lu.user_id = ? "
        "ORDER BY p.created_at_int DESC LIMIT 1", (admin_id,)).fetchone()
    admin_project = con.execute(
        "SELECT extra, description, enabled, domain_id, parent_id FROM project WHERE name = 'admin' AND is_domain = 0").fetchone()
    domain = admin_project[3]
    assert admin_project[4] == domain, f"a top-level project's parent is its domain, found {admin_project[4]!r}"

    # ---- projects -----------------------------------------------------------------------------
    have_projects = con.execute("SELECT count(*) FROM project WHERE is_domain = 0").fetchone()[0]
    new_projects = n // 10 - have_projects
    chains = max(10, new_projects * 20 // 100 // CHAIN_DEPTH)
    wide_children = new_projects * 40 // 100
    flat = new_projects - chains * CHAIN_DEPTH - WIDE_PARENTS - wide_children
    assert flat >= 35 and wide_children >= WIDE_PARENTS * 3, "too few projects for the measured user's"
    projects: list[tuple[str, str, str]] = []  # (id, name, parent_id)
    chain = [[] for _ in range(chains)]  # chain[c][d]: id at depth d + 1
    for c in range(chains):
        parent = domain
        for d in range(CHAIN_DEPTH):
            pid = new_id()
            name = MEASURED_PROJECT if (c, d) == (0, CHAIN_DEPTH - 1) else f"chain-{c:05d}-{d + 1}"
            projects.append((pid, name, parent))
            chain[c].append(pid)
            parent = pid
    wide = []
    for w in range(WIDE_PARENTS):
        pid = new_id()
        projects.append((pid, f"wide-{w}", domain))
        wide.append(pid)
    wide_kids = [[] for _ in range(WIDE_PARENTS)]
    for k in range(wide_children):
        pid = new_id()
        w = k % WIDE_PARENTS
        projects.append((pid, f"wide-{w}-{k // WIDE_PARENTS:06d}", wide[w]))
        wide_kids[w].append(pid)
    flats = []
    for k in range(flat):
        pid = new_id()
        projects.append((pid, f"flat-{k:06d}", domain))
        flats.append(pid)
    extra, description, enabled = admin_project[0], "", admin_project[2]
    # Parents before children (foreign keys), as listed.
    insert("INSERT INTO project (id, name, extra, description, enabled, domain_id, parent_id, is_domain) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
           ((p, name, extra, description, enabled, domain, parent) for p, name, parent in projects))
    project_ids = [p for p, _, _ in projects]

    # ---- users --------------------------------------------------------------------------------
    have_users = con.execute("SELECT count(*) FROM user").fetchone()[0]
    fillers = n - have_users - 2
    user_ids = [new_id() for _ in range(fillers)]
    measured = new_id()
    by_id = sorted(zip(user_ids, range(fillers)))  # primary-key order: faster inserts
    insert("INSERT INTO user (id, extra, enabled, default_project_id, created_at, domain_id) "
           "VALUES (?, '{}', 1, NULL, ?, ?)",
           ((u, admin_created, domain) for u, _ in by_id))
    insert("INSERT INTO local_user (user_id, domain_id, name, failed_auth_count) VALUES (?, ?, ?, ?)",
           ((u, domain, f"user-{i:07d}", lu_cols[0]) for u, i in by_id))
    del by_id
    con.execute("INSERT INTO user (id, extra, enabled, default_project_id, created_at, domain_id) "
                "VALUES (?, '{}', 1, NULL, ?, ?)", (measured, admin_created, domain))
    local_id = con.execute("INSERT INTO local_user (user_id, domain_id, name, failed_auth_count) VALUES (?, ?, ?, ?)",
                           (measured, domain, MEASURED_USER, lu_cols[0])).lastrowid
    assert pw[2].startswith("$2b$"), f"admin's password is not bcrypt: {pw[2][:7]}"
    hashed = bcrypt.hashpw(MEASURED_PASSWORD.encode(), bcrypt.gensalt(4, prefix=b"2b")).decode()
    con.execute("INSERT INTO password (local_user_id, expires_at, self_service, password_hash, created_at_int, "
                "expires_at_int, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (local_id, pw[0], pw[1], hashed, pw[3], pw[4], pw[5]))
    typical = new_id()
    con.execute("INSERT INTO user (id, extra, enabled, default_project_id, created_at, domain_id) "
                "VALUES (?, '{}', 1, NULL, ?, ?)", (typical, admin_created, domain))
    typical_local = con.execute("INSERT INTO local_user (user_id, domain_id, name, failed_auth_count) VALUES (?, ?, ?, ?)",
                                (typical, domain, TYPICAL_USER, lu_cols[0])).lastrowid
    con.execute("INSERT INTO password (local_user_id, expires_at, self_service, password_hash, created_at_int, "
                "expires_at_int, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (typical_local, pw[0], pw[1], hashed, pw[3], pw[4], pw[5]))

    # ---- groups and memberships ---------------------------------------------------------------
    filler_groups = [new_id() for _ in range(max(2000, n // 100))]
    scale_groups = [new_id() for _ in range(MEASURED_GROUPS)]
    insert('INSERT INTO "group" (id, domain_id, name, description, extra) VALUES (?, ?, ?, \'\', \'{}\')',
           [(g, domain, f"group-{i:06d}") for i, g in enumerate(filler_groups)]
           + [(g, domain, f"scale-group-{i:04d}") for i, g in enumerate(scale_groups)])
    memberships = sorted((u, rnd.choice(filler_groups)) for u in user_ids)
    memberships += [(measured, g) for g in scale_groups]
    memberships += [(typical, g) for g in filler_groups[:3]]
    insert("INSERT INTO user_group_membership (user_id, group_id) VALUES (?, ?)", memberships)
    n_memberships = len(memberships)
    del memberships

    # ---- assignments --------------------------------------------------------------------------
    assignments: set[tuple[str, str, str, str, int]] = set()
    cycle = [member, reader, manager]
    # The measured user's 20 direct ones: scale-project (member) first.
    direct = ([chain[0][4]] + flats[0:13] + wide[0:2] + wide_kids[0][0:2] + [chain[1][2], chain[2][3]])
    for k, p in enumerate(direct):
        assignments.add(("UserProject", measured, p, member if k == 0 else cycle[k % 3], 0))
    # 50 of its groups hold member: 5 inherited on the roots of chains 0..4 (chain 0 holds
    # scale-project), 45 plain.
    plain = flats[5:35] + [chain[c][0] for c in range(5, 10)] + [wide_kids[w][k] for w in (1, 2, 3) for k in range(3)] + [wide[2]]
    for g in range(5):
        assignments.add(("GroupProject", scale_groups[g], chain[g][0], member, 1))
    for g, p in zip(range(5, 50), plain, strict=True):
        assignments.add(("GroupProject", scale_groups[g], p, member, 0))
    assignments.add(("UserProject", typical, chain[0][4], member, 0))
    measured_assignments = len(assignments)

    have_assignments = con.execute("SELECT count(*) FROM assignment").fetchone()[0]
    todo = n - have_assignments - measured_assignments
    weights = [member] * 6 + [reader] * 3 + [manager]
    shuffled = user_ids[:]
    rnd.shuffle(shuffled)
    u_next = 0
    target = len(assignments) + todo
    while len(assignments) < target:
        k = rnd.random()
        role = rnd.choice(weights)
        if k < 0.85:
            row = ("UserProject", shuffled[u_next % fillers], rnd.choice(project_ids), role, int(rnd.random() < 0.01))
            u_next += 1
        elif k < 0.97:
            row = ("GroupProject", rnd.choice(filler_groups), rnd.choice(project_ids), role, int(rnd.random() < 0.02))
        elif k < 0.99:
            row = ("UserDomain", shuffled[u_next % fillers], domain, role, int(rnd.random() < 0.10))
            u_next += 1
        else:
            row = ("GroupDomain", rnd.choice(filler_groups), domain, role, int(rnd.random() < 0.10))
        assignments.add(row)
    insert("INSERT INTO assignment (type, actor_id, target_id, role_id, inherited) VALUES (?, ?, ?, ?, ?)",
           sorted(assignments))
    del assignments
    con.execute("COMMIT")
    con.execute(f"PRAGMA journal_mode = {journal}")
    fill_s = time.monotonic() - t_start

    # ---- counts -------------------------------------------------------------------------------
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    parents = dict(con.execute("SELECT id, parent_id FROM project WHERE is_domain = 0").fetchall())
    depth_of: dict[str, int] = {}

    def depth(p: str) -> int:  # 1 for a project right below its domain
        start, path = p, []
        while p in parents and p not in depth_of:
            path.append(p)
            p = parents[p]
        d = depth_of.get(p, 0)  # a domain (not in parents) is depth 0
        for x in reversed(path):
            d += 1
            depth_of[x] = d
        return depth_of[start]

    max_depth = max(depth(p) for p in parents)
    children = {}
    for p, parent in parents.items():
        children[parent] = children.get(parent, 0) + 1
    counts = {
        "users": q("SELECT count(*) FROM user"),
        "projects": q("SELECT count(*) FROM project WHERE is_domain = 0"),
        "max_depth": max_depth,
        "max_children": max(c for p, c in children.items() if p in parents),
        "assignments": q("SELECT count(*) FROM assignment"),
        "inherited_assignments": q("SELECT count(*) FROM assignment WHERE inherited = 1"),
        "assignments_by_type": dict(con.execute("SELECT type, count(*) FROM assignment GROUP BY type").fetchall()),
        "groups": q('SELECT count(*) FROM "group"'),
        "memberships": q("SELECT count(*) FROM user_group_membership"),
        "measured_user_id": measured,
        "measured_project_id": chain[0][4],
        "typical_user_id": typical,
        "measured_groups": MEASURED_GROUPS,
        "measured_assignments": measured_assignments,
        "fill_seconds": round(fill_s, 1),
    }
    assert counts["memberships"] == n_memberships
    con.close()
    with open(counts_out, "w") as f:
        json.dump(counts, f, indent=1)
    print(f"filled {db} in {fill_s:.1f} s: " + ", ".join(
        f"{k} {v}" for k, v in counts.items() if not k.startswith(("measured_", "typical_")) and k != "fill_seconds"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
