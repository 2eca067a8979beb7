// Filesystem helpers shared by the MicroPython runner and the simulated board's bridge:
// both copy the compiled firmware tree into the interpreter's in-memory filesystem.
import fs from "node:fs";
import path from "node:path";

export function mkdirs(FS, dir) {
    let cur = "";
    for (const part of dir.split("/").filter(Boolean)) {
        cur += "/" + part;
        if (!FS.analyzePath(cur).exists) FS.mkdir(cur);
    }
}

// Copy a host directory into the interpreter's filesystem; hidden entries (build stamps) are skipped.
export function copyTree(FS, src, dst) {
    mkdirs(FS, dst);
    for (const ent of fs.readdirSync(src, { withFileTypes: true })) {
        if (ent.name.startsWith(".")) continue;
        const s = path.join(src, ent.name);
        const d = (dst === "/" ? "" : dst) + "/" + ent.name;
        if (ent.isDirectory()) copyTree(FS, s, d);
        else if (ent.isFile()) FS.writeFile(d, fs.readFileSync(s));
    }
}
