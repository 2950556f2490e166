"""What ansible-core does with the cases of tests/tests/ansible: one process
for many cases, run by the venv's python that tests/setup.sh installs.

    driver.py inventory < request.json > answer.json
    driver.py files < request.json > answer.json
    driver.py templates < request.json > answer.json

The answer is {"ansible": its version, "cases": {id: what Ansible did}}.

inventory: {"cases": [{"id", "path", "patterns": [{"id", "pattern"}]}]}.
Each inventory is read by ansible-core's own InventoryManager and
VariableManager, as `ansible-inventory` reads it: the groups with their
hosts in order (and whether that order is the inventory's or Python's
hash seed's), each host's variables (what `ansible-inventory --host`
prints, its magic variables aside) and connection settings (as the ssh
connection plugin and the sudo become plugin resolve them), and each
pattern's hosts in order, as `ansible -i PATH PATTERN --list-hosts` lists
them, with the warnings said on the way. A pattern with an `@FILE` term is
what Ansible takes only as a limit: `ansible -i PATH all --limit PATTERN`.

templates: {"cases": [{"id", "template", "includes", "vars"}]}: each
template rendered by the template module with the vars as its task's
vars; the answer has, per case, whether it failed and the file's text.

files: {"cases": [{"id", "module", "args", "path", "content"}]}: for
each case a file (`content` null: none) in a directory of its own, and one
task of `module` (lineinfile, blockinfile) with `args` on it. The tasks run
in playbooks (hosts: localhost, connection: local), first with
`--check --diff` on fresh copies, then for real. The answer has, per
case, each run's changed/failed/msg and the files' text after the check
and the real runs.
"""

import concurrent.futures
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping

# Quiet and self-contained: no ansible.cfg, home or temp dir of the user's.
_HOME = tempfile.mkdtemp(prefix="cs-ansible-home-")
_CONFIG = os.path.join(_HOME, "ansible.cfg")
with open(_CONFIG, "w"):
    pass
os.environ.update(
    ANSIBLE_CONFIG=_CONFIG,
    ANSIBLE_HOME=_HOME,
    ANSIBLE_LOCAL_TEMP=os.path.join(_HOME, "tmp"),
    ANSIBLE_NOCOLOR="1",
    ANSIBLE_RETRY_FILES_ENABLED="0",
    ANSIBLE_LOCALHOST_WARNING="0",
    ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    ANSIBLE_PIPELINING="1",
    ANSIBLE_PYTHON_INTERPRETER=sys.executable,
)

import warnings  # noqa: E402

warnings.simplefilter("ignore")  # cryptography's DSA deprecation, on stderr

from ansible import constants as C  # noqa: E402
from ansible import release  # noqa: E402
from ansible import context  # noqa: E402
from ansible.errors import AnsibleError  # noqa: E402
from ansible.inventory import manager as inventory_manager  # noqa: E402
from ansible.module_utils.common.collections import ImmutableDict  # noqa: E402
from ansible.parsing.dataloader import DataLoader  # noqa: E402
from ansible.playbook.play_context import PlayContext  # noqa: E402
from ansible.playbook.task import Task  # noqa: E402
from ansible.plugins.loader import become_loader, connection_loader  # noqa: E402
from ansible.template import Templar  # noqa: E402
from ansible.vars.manager import VariableManager  # noqa: E402

# Magic variables: what Ansible sets itself, not what the inventory says.
MAGIC = set(C.INTERNAL_STATIC_VARS) | {
    "ansible_check_mode",
    "ansible_config_file",
    "ansible_diff_mode",
    "ansible_forks",
    "ansible_inventory_sources",
    "ansible_playbook_python",
    "ansible_run_tags",
    "ansible_skip_tags",
    "ansible_verbosity",
    "ansible_version",
    "group_names",
    "groups",
    "hostvars",
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "omit",
    "playbook_dir",
}


def plain(value):
    """`value` as plain JSON: Ansible's tagged str, int, list and dict
    subclasses become the JSON types they are."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()  # as ansible-inventory prints one
    raise TypeError("no JSON for %r (%s)" % (value, type(value).__name__))


def settings(templar, name, variables):
    """How Ansible reaches the host: the ssh connection plugin's host,
    remote_user and port, and PlayContext's become with the sudo plugin's
    become_user."""
    variables = dict(variables, inventory_hostname=name)
    conn = connection_loader.get("ssh", PlayContext(), None)
    conn.set_options(var_options=variables)
    play = PlayContext().set_task_and_variable_override(
        task=Task(), variables=variables, templar=templar
    )
    play.post_validate(templar=templar)
    sudo = None
    if play.become:
        become = become_loader.get("sudo")
        become.set_options(var_options=variables)
        sudo = become.get_option("become_user") or "root"
    port = conn.get_option("port")
    return {
        "address": plain(conn.get_option("host")),
        "user": plain(conn.get_option("remote_user")),
        "port": None if port is None else int(port),
        "sudo": plain(sudo),
    }


class Warnings:
    """What Ansible's inventory code warns about, kept instead of printed."""

    def __init__(self):
        self.said = []
        inventory_manager.display.warning = self.warn
        inventory_manager.display.error_as_warning = self.error_as_warning

    def warn(self, msg, *args, **kwargs):
        self.said.append(str(msg))

    def error_as_warning(self, msg, exception, *args, **kwargs):
        self.said.append("%s %s" % (msg, str(exception).splitlines()[0]))

    def take(self):
        said, self.said = self.said, []
        return said


def select(inventory, pattern):
    """The hosts `pattern` selects, as the `ansible` command lists them."""
    inventory.clear_caches()
    if any(term.startswith("@") for term in inventory_manager.split_host_pattern(pattern)):
        inventory.subset(pattern)
        try:
            return inventory.get_hosts("all")
        finally:
            inventory.subset(None)
    return inventory.get_hosts(pattern)


def ordered(group):
    """Whether Ansible lists the group's hosts in an order of its own
    making: its own hosts, its children's in order, then each further
    generation of groups as a set iterates them, which Python's string
    hashing reorders from one process to the next. The order is the
    inventory's unless two groups of one such generation bring new hosts."""
    seen = {group, *group.child_groups}
    hosts = {h for g in seen for h in g.hosts}
    generation = {g for c in group.child_groups for g in c.child_groups} - seen
    while generation:
        bringing = [g for g in generation if any(h not in hosts for h in g.hosts)]
        if len(bringing) > 1:
            return False
        seen |= generation
        hosts |= {h for g in generation for h in g.hosts}
        generation = {g for c in generation for g in c.child_groups} - seen
    return True


def inventory_case(case, loader, said):
    answer = {"error": None, "groups": [], "hosts": [], "patterns": {}, "warnings": []}
    try:
        inventory = inventory_manager.InventoryManager(loader=loader, sources=[case["path"]])
        manager = VariableManager(loader=loader, inventory=inventory)
        templar = Templar(loader=loader)
        for name, group in inventory.groups.items():
            answer["groups"].append([name, [h.name for h in group.get_hosts()], ordered(group)])
        for host in inventory.get_hosts("all", ignore_limits=True):
            found = manager.get_vars(host=host, include_hostvars=False, stage="all")
            found = {k: plain(v) for k, v in found.items() if k not in MAGIC}
            answer["hosts"].append([host.name, found, settings(templar, host.name, found)])
    except AnsibleError as e:
        answer["error"] = str(e)
        return answer
    finally:
        answer["warnings"] = said.take()
    for p in case["patterns"]:
        result = {"hosts": None, "error": None, "warnings": []}
        try:
            result["hosts"] = [h.name for h in select(inventory, p["pattern"])]
        except AnsibleError as e:
            result["error"] = str(e)
        result["warnings"] = said.take()
        answer["patterns"][p["id"]] = result
    return answer


def inventories(request):
    context.CLIARGS = ImmutableDict({})
    os.environ["ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED"] = "1"
    C.INVENTORY_ANY_UNPARSED_IS_FAILED = True
    said = Warnings()
    loader = DataLoader()
    return {case["id"]: inventory_case(case, loader, said) for case in request["cases"]}


TEMPLATE_MARKS = ("{{", "{%", "{#")


def task(module, args, path, register):
    for key, value in args.items():
        if isinstance(value, str) and any(m in value for m in TEMPLATE_MARKS):
            raise SystemExit("%s=%r would be a Jinja template in a task" % (key, value))
    return {
        "name": register,
        module: dict(args, path=path),
        "register": register,
        "ignore_errors": True,
    }


def playbook(cases, root, results):
    """One play: each case's task, then a task that writes the registered
    results to `results`."""
    tasks, keep = [], []
    for i, case in enumerate(cases):
        path = os.path.join(root, case["id"], case["path"])
        tasks.append(task(case["module"], case["args"], path, "r%d" % i))
        keep.append("%s: r%d" % (json.dumps(case["id"]), i))
    tasks.append(
        {
            "name": "results",
            "copy": {"dest": results, "content": "{{ {%s} | to_json }}" % ", ".join(keep)},
            "check_mode": False,
            "diff": False,
        }
    )
    return [
        {
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "tasks": tasks,
        }
    ]


def lay_out(cases, root):
    for case in cases:
        path = os.path.join(root, case["id"], case["path"])
        os.makedirs(os.path.join(root, case["id"]), exist_ok=True)
        if case["content"] is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(case["content"].encode())


def read_back(case, root):
    path = os.path.join(root, case["id"], case["path"])
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None


def run(work, name, cases, check):
    """One ansible-playbook over `cases`: its registered results."""
    root = os.path.join(work, name)
    lay_out(cases, root)
    results = os.path.join(work, name + ".json")
    book = os.path.join(work, name + ".yml")
    with open(book, "w") as f:
        json.dump(playbook(cases, root, results), f)
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", book]
    if check:
        command += ["--check", "--diff"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=work)
    if not os.path.exists(results):
        raise SystemExit(
            "ansible-playbook %s exited %d without results:\n%s\n%s"
            % (name, done.returncode, done.stdout[-4000:], done.stderr[-4000:])
        )
    with open(results) as f:
        return root, json.load(f)


def outcome(result):
    return {
        "changed": bool(result.get("changed", False)),
        "failed": bool(result.get("failed", False)),
        "msg": plain(result.get("msg", "")),
    }


def files(request):
    cases = request["cases"]
    work = tempfile.mkdtemp(prefix="cs-ansible-files-")
    # Playbooks in parallel: each task forks a module, and one process runs one at a time.
    ways = max(2, os.cpu_count() or 2)
    chunks = [cases[i::ways] for i in range(ways)]
    jobs = [("check%d" % i, chunk, True) for i, chunk in enumerate(chunks) if chunk]
    jobs += [("apply%d" % i, chunk, False) for i, chunk in enumerate(chunks) if chunk]
    answer = {case["id"]: {} for case in cases}
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        futures = {pool.submit(run, work, name, chunk, check): (chunk, check) for name, chunk, check in jobs}
        for future in concurrent.futures.as_completed(futures):
            chunk, check = futures[future]
            root, results = future.result()
            for case in chunk:
                mine = answer[case["id"]]
                if check:
                    mine["check"] = outcome(results[case["id"]])
                    mine["check_file"] = read_back(case, root)
                else:
                    mine["apply"] = outcome(results[case["id"]])
                    mine["file"] = read_back(case, root)
    shutil.rmtree(work)
    return answer


def templates(request):
    """Each case's template (and the templates it includes, beside it)
    rendered by the template module into a file, with the case's vars as
    the task's vars: one playbook for all."""
    cases = request["cases"]
    work = tempfile.mkdtemp(prefix="cs-ansible-templates-")
    results = os.path.join(work, "results.json")
    tasks, keep = [], []
    for i, case in enumerate(cases):
        folder = os.path.join(work, case["id"])
        os.makedirs(folder)
        for name, text in [("main.j2", case["template"])] + sorted(case["includes"].items()):
            with open(os.path.join(folder, name), "w") as f:
                f.write(text)
        tasks.append(
            {
                "name": "r%d" % i,
                "template": {"src": os.path.join(folder, "main.j2"), "dest": os.path.join(folder, "out")},
                "vars": case["vars"],
                "register": "r%d" % i,
                "ignore_errors": True,
            }
        )
        keep.append("%s: r%d" % (json.dumps(case["id"]), i))
    tasks.append({"name": "results", "copy": {"dest": results, "content": "{{ {%s} | to_json }}" % ", ".join(keep)}})
    book = os.path.join(work, "book.yml")
    with open(book, "w") as f:
        json.dump([{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}], f)
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", book]
    done = subprocess.run(command, capture_output=True, text=True, cwd=work)
    if not os.path.exists(results):
        raise SystemExit(
            "ansible-playbook exited %d without results:\n%s\n%s" % (done.returncode, done.stdout[-4000:], done.stderr[-4000:])
        )
    with open(results) as f:
        registered = json.load(f)
    answer = {}
    for case in cases:
        out = os.path.join(work, case["id"], "out")
        text = None
        if os.path.exists(out):
            with open(out, "rb") as f:
                text = f.read().decode("utf-8", "surrogateescape")
        answer[case["id"]] = {"failed": bool(registered[case["id"]].get("failed", False)), "text": text}
    shutil.rmtree(work)
    return answer


def main():
    kind = sys.argv[1] if len(sys.argv) == 2 else None
    do = {"inventory": inventories, "files": files, "templates": templates}.get(kind)
    if do is None:
        raise SystemExit("usage: driver.py inventory|files|templates < request.json")
    try:
        answer = do(json.load(sys.stdin))
        json.dump({"ansible": release.__version__, "cases": answer}, sys.stdout)
    finally:
        shutil.rmtree(_HOME, ignore_errors=True)


if __name__ == "__main__":
    main()
