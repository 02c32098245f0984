/* tsung_lua: pass 3 of the Tsung importer, the Lua writer. Walks the checked element tree and
 * writes the scenario on parrot.tsung (its shape is in tsung.h), each part with the XML line it
 * comes from; what it cannot express fails or becomes a note. The configuration and the load
 * are written by tsung_conf.c. */
#include "tsung_lua.h"

#include "tsung_conf.h"
#include "tsung_tree.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Pass 3: the Lua */

static void emit_block(ctx *c, node *n);

/* One element of a request's headers (0), cookies (1), dyn (2) or matches (3) list. */
static void emit_item(ctx *c, sbuf *b, int pass, node *k)
{
    int f = 1;
    tsung_sb_puts(b, "{ ");
    if (pass == 0) {
        tsung_lua_cstr(b, tsung_attr(k, "name"));
        tsung_sb_puts(b, ", ");
        tsung_lua_cstr(b, tsung_attr(k, "value") ? tsung_attr(k, "value") : "");
        if (tsung_attr(k, "encoding")) tsung_sb_puts(b, ", "), tsung_lua_cstr(b, tsung_attr(k, "encoding"));
    } else if (pass == 1) {
        static const char *const a[] = {"key", "value", "domain", "path"};
        for (int j = 0; j < 4; j++)
            tsung_field(b, &f, a[j], tsung_attr(k, a[j]), 0);
    } else if (pass == 2) {
        static const char *const a[] = {"name", "re", "xpath", "jsonpath", "header", "decode"};
        for (int j = 0; j < 6; j++)
            if (j != 5 || strcmp(tsung_attr(k, "decode") ? tsung_attr(k, "decode") : "false", "false"))
                tsung_field(b, &f, a[j], tsung_attr(k, a[j]), 0);
        if (tsung_attr(k, "regexp") && !tsung_attr(k, "re")) {
            tsung_field(b, &f, "re", tsung_attr(k, "regexp"), 0);
            tsung_note(c, k->line, "dyn_variable regexp= is read as re= (Tsung 1.7 ignores regexp=)");
        }
        if (tsung_attr(k, "pgsql_expr"))
            tsung_note(c, k->line, "dyn_variable pgsql_expr= is for PostgreSQL; ignored");
    } else {
        static const char *const a[] = {"do",           "when",      "max_loop",
                                        "sleep_loop",   "loop_back", "max_restart",
                                        "skip_headers", "name",      "apply_to_content"};
        size_t l;
        const char *t = tsung_text_trim(k, &l);
        tsung_sb_puts(b, "regex = ");
        tsung_lua_str(b, t, l);
        f = 0;
        for (int j = 0; j < 9; j++) {
            const char *v = tsung_attr(k, a[j]);
            if (v && !((j == 6 && !strcmp(v, "no")) || (j == 7 && !strcmp(v, "-")) ||
                       (j == 8 && !strcmp(v, "undefined"))))
                tsung_field(b, &f, a[j], v, j >= 2 && j <= 5);
        }
        if (tsung_is_true(tsung_attr(k, "subst"))) tsung_sb_puts(b, ", subst = true");
    }
    tsung_sb_puts(b, " }");
}

/* The lists of a request, one per line into `lists`: its headers and cookies (from <http>), its
 * dyn_variables and matches. */
static void emit_lists(ctx *c, node *req, node *h, sbuf *lists)
{
    for (int pass = 0; pass < 4; pass++) {
        static const char *const names[] = {"http_header", "add_cookie", "dyn_variable", "match"};
        static const char *const keys[] = {"headers", "cookies", "dyn", "matches"};
        node *src = pass < 2 ? h : req;
        sbuf items = {0};
        int n = 0;
        for (int i = 0; i < src->nkids; i++) {
            if (strcmp(src->kids[i]->name, names[pass])) continue;
            if (n++) {
                tsung_sb_puts(&items, ",\n");
                for (int s = 0; s <= c->indent + 1; s++)
                    tsung_sb_puts(&items, "  ");
            }
            emit_item(c, &items, pass, src->kids[i]);
        }
        if (!n) continue;
        for (int s = 0; s <= c->indent; s++)
            tsung_sb_puts(lists, "  ");
        if (n == 1) {
            tsung_sb_printf(lists, "%s = { %s },\n", keys[pass], items.s);
        } else {
            tsung_sb_printf(lists, "%s = {\n", keys[pass]);
            for (int s = 0; s <= c->indent + 1; s++)
                tsung_sb_puts(lists, "  ");
            tsung_sb_printf(lists, "%s,\n", items.s);
            for (int s = 0; s <= c->indent; s++)
                tsung_sb_puts(lists, "  ");
            tsung_sb_puts(lists, "},\n");
        }
        free(items.s);
    }
}

/* The Lua table of one <request>: its <http> attributes and children, dyn_variables, matches. */
static void emit_request(ctx *c, node *req)
{
    sbuf *b = &c->out;
    node *h = NULL;
    for (int i = 0; i < req->nkids; i++)
        if (!strcmp(req->kids[i]->name, "http")) h = req->kids[i];
    if (!h) return tsung_fail_at(c, req, "<request> needs <http>");
    int first = 1;
    const char *subst = tsung_attr(req, "subst"), *url = tsung_attr(h, "url");
    sbuf u = {0};
    if (c->o->server && (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8))) {
        const char *rest = strchr(strstr(url, "://") + 3, '/');
        tsung_sb_printf(
            &u, "%s://%s%s", strncmp(c->o->server, "https://", 8) ? "http" : "https",
            c->o->server + (strstr(c->o->server, "://") ? strstr(c->o->server, "://") - c->o->server + 3 : 0),
            rest ? rest : "/");
        tsung_note(c, h->line, "%s now goes to %s (--server)", url, u.s);
        url = u.s;
    }
    tsung_ind(c);
    tsung_sb_puts(b, "s:request { ");
    tsung_field(b, &first, "method", tsung_attr(h, "method") ? tsung_attr(h, "method") : "GET", 0);
    tsung_field(b, &first, "url", url, 0);
    tsung_field(b, &first, "version", tsung_attr(h, "version") ? tsung_attr(h, "version") : "1.1", 0);
    free(u.s);
    if (subst && !strcmp(subst, "true"))
        tsung_sb_puts(b, ", subst = true");
    else if (subst && !strcmp(subst, "all_except_body"))
        tsung_field(b, &first, "subst", subst, 0);
    if (tsung_attr(req, "tag") && strcmp(tsung_attr(req, "tag"), "undefined"))
        tsung_field(b, &first, "tag", tsung_attr(req, "tag"), 0);
    tsung_field(b, &first, "contents", tsung_attr(h, "contents"), 0);
    if (tsung_attr(h, "contents_from_file")) {
        sbuf bn = {0};
        tsung_bundle_name(c, h, tsung_attr(h, "contents_from_file"), &bn);
        tsung_field(b, &first, "contents_from_file", bn.s, 0);
        free(bn.s);
    }
    tsung_field(b, &first, "content_type", tsung_attr(h, "content_type"), 0);
    tsung_field(b, &first, "if_modified_since", tsung_attr(h, "if_modified_since"), 0);
    sbuf lists = {0};
    emit_lists(c, req, h, &lists);
    for (int i = 0; i < h->nkids; i++) {
        node *k = h->kids[i];
        int f = 1;
        if (!strcmp(k->name, "soap")) {
            tsung_field(b, &first, "soap_action", tsung_attr(k, "action"), 0);
        } else if (!strcmp(k->name, "www_authenticate") || !strcmp(k->name, "oauth")) {
            int oauth = k->name[0] == 'o';
            for (int s = 0; s <= c->indent; s++)
                tsung_sb_puts(&lists, "  ");
            tsung_sb_printf(&lists, "%s = { ", oauth ? "oauth" : "auth");
            if (!oauth)
                tsung_field(&lists, &f, "type", tsung_attr(k, "type") ? tsung_attr(k, "type") : "basic", 0);
            for (char **a = k->attr; a && a[0]; a += 2)
                if ((oauth || strcmp(a[0], "type")) && tsung_has_word(tsung_spec_of(k->name)->attrs, a[0]))
                    tsung_field(&lists, &f, a[0], a[1], 0);
            tsung_sb_puts(&lists, " },\n");
            if (oauth)
                tsung_note(c, k->line,
                           "<oauth> is passed on as request.oauth; the runtime does not sign requests yet");
        }
    }
    if (lists.s) {
        tsung_sb_printf(b, ", -- line %d\n%s", req->line, lists.s);
        tsung_ind(c);
        tsung_sb_puts(b, "}\n");
    } else {
        tsung_sb_printf(b, " } -- line %d\n", req->line);
    }
    free(lists.s);
}

/* The comparison of an <if>/<while>/<until>: "op", value (the first of eq neq gt gte lt lte). */
static const char *compare_of(ctx *c, node *n, const char **value)
{
    static const char *const ops[] = {"eq", "neq", "gt", "gte", "lt", "lte"};
    const char *op = NULL;
    for (int i = 0; i < 6; i++)
        if (tsung_attr(n, ops[i])) {
            if (op)
                tsung_note(c, n->line, "<%s> has both %s and %s: %s is used", n->name, op, ops[i], op);
            else
                op = ops[i], *value = tsung_attr(n, ops[i]);
        }
    if (!op) tsung_fail_at(c, n, "<%s> needs one of eq, neq, gt, gte, lt, lte", n->name);
    return op;
}

static void emit_thinktime(ctx *c, node *k)
{
    sbuf *b = &c->out;
    const char *v = tsung_attr(k, "value");
    if (v && (!strcmp(v, "wait_global") || !strcmp(v, "wait_bidi"))) {
        tsung_note(c, k->line, "thinktime %s (a barrier between users) has no effect here", v);
        tsung_ind(c), tsung_sb_printf(b, "-- <thinktime value=\"%s\"> line %d: no effect here\n", v, k->line);
        return;
    }
    const char *r = tsung_attr(k, "random"), *lo = tsung_attr(k, "min"), *hi = tsung_attr(k, "max");
    double d = 0, dlo = 0, dhi = 0;
    if (v && strncmp(v, "%%", 2) && (!tsung_num_of(v, &d) || d <= 0))
        return tsung_fail_at(c, k, "<thinktime value=\"%s\">: expected a number of seconds above 0", v);
    if ((lo || hi) && (v || !lo || !hi))
        return tsung_fail_at(c, k, "<thinktime>: give value, or min and max (not both)");
    if (lo && (!tsung_num_of(lo, &dlo) || !tsung_num_of(hi, &dhi) || dlo <= 0 || dhi <= dlo))
        return tsung_fail_at(c, k, "<thinktime min=\"%s\" max=\"%s\">: expected 0 < min < max", lo, hi);
    int first = 1;
    tsung_ind(c), tsung_sb_puts(b, "s:thinktime { ");
    tsung_field(b, &first, "value", v, 1);
    if (r) /* random="false" too: without it the element takes the default's kind */
        tsung_sb_printf(b, "%srandom = %s", first ? "" : ", ", tsung_is_true(r) ? "true" : "false"),
            first = 0;
    tsung_field(b, &first, "min", tsung_attr(k, "min"), 1);
    tsung_field(b, &first, "max", tsung_attr(k, "max"), 1);
    tsung_sb_printf(b, "%s} -- line %d\n", first ? "" : " ", k->line);
}

static void emit_setdynvars(ctx *c, node *k)
{
    static const char *const a[] = {"callback", "fileid", "order", "delimiter", "length",
                                    "start",    "end",    "from",  "jsonpath",  "value"};
    sbuf *b = &c->out;
    int first = 1;
    const char *t = tsung_attr(k, "sourcetype");
    if (!strcmp(t, "file")) {
        const char *id = tsung_attr(k, "fileid") ? tsung_attr(k, "fileid") : "default";
        sbuf want = {0};
        tsung_sb_puts(&want, "    [");
        tsung_lua_cstr(&want, id);
        tsung_sb_puts(&want, "] = ");
        int found = c->file_servers.s && strstr(c->file_servers.s, want.s);
        free(want.s);
        if (!found)
            return tsung_fail_at(
                c, k, "<setdynvars fileid=\"%s\">: no <option name=\"file_server\" id=\"%s\">", id, id);
    }
    tsung_ind(c), tsung_sb_puts(b, "s:setdynvars { ");
    tsung_field(b, &first, "sourcetype", t, 0);
    for (int i = 0; i < 10; i++)
        tsung_field(b, &first, a[i], tsung_attr(k, a[i]), i >= 4 && i <= 6);
    tsung_sb_puts(b, ", vars = { ");
    for (int i = 0, n = 0; i < k->nkids; i++)
        if (!strcmp(k->kids[i]->name, "var"))
            tsung_sb_puts(b, n++ ? ", " : ""), tsung_lua_cstr(b, tsung_attr(k->kids[i], "name"));
    tsung_sb_printf(b, " } } -- line %d\n", k->line);
}

/* The body of a Lua function (transaction, repeat), whose loops count afresh. */
static void emit_function_body(ctx *c, node *k)
{
    int loops = c->loops;
    c->loops = 0;
    c->indent++, emit_block(c, k), c->indent--;
    c->loops = loops;
}

/* The body of a for/foreach loop and its end: each costs the function 4 of its 200 locals. */
static void emit_loop_body(ctx *c, node *k)
{
    if (++c->loops > 40) return tsung_fail_at(c, k, "more than 40 <for>/<foreach> loops inside one another");
    c->indent++, emit_block(c, k), c->indent--;
    c->loops--;
    tsung_ind(c), tsung_sb_puts(&c->out, "end\n");
}

/* <repeat>: the body, then the while/until child as the condition. */
static void emit_repeat(ctx *c, node *k)
{
    sbuf *b = &c->out;
    node *cond = NULL;
    for (int i = 0; i < k->nkids; i++)
        if (!strcmp(k->kids[i]->name, "while") || !strcmp(k->kids[i]->name, "until")) {
            if (cond) return tsung_fail_at(c, k->kids[i], "<repeat> has more than one <while>/<until>");
            cond = k->kids[i];
        }
    int first = 1;
    tsung_ind(c), tsung_sb_puts(b, "s:repeat_loop({ ");
    tsung_field(b, &first, "name", tsung_attr(k, "name"), 0);
    tsung_field(b, &first, "max_repeat", tsung_attr(k, "max_repeat"), 1);
    tsung_sb_printf(b, " }, function() -- line %d\n", k->line);
    emit_function_body(c, k);
    tsung_ind(c);
    if (!cond) {
        tsung_note(c, k->line, "<repeat> without <while> or <until> runs once");
        tsung_sb_puts(b, "end)\n");
        return;
    }
    const char *v = NULL, *op = compare_of(c, cond, &v);
    if (!op) return;
    tsung_sb_printf(b, "end, { kind = \"%s\", var = ", cond->name);
    tsung_lua_cstr(b, tsung_attr(cond, "var"));
    tsung_sb_printf(b, ", op = \"%s\", value = ", op);
    tsung_lua_cstr(b, v);
    tsung_sb_printf(b, " }) -- <%s> line %d\n", cond->name, cond->line);
}

/* <change_type new_type="ts_http" host= port= server_type= store= restore=>: later requests go
 * to that server (--server points it elsewhere too) in a new session, or with restore the one a
 * store kept for it. */
static void emit_change_type(ctx *c, node *k)
{
    sbuf *b = &c->out;
    int first = 1;
    char port[16];
    snprintf(port, sizeof port, "%d", c->srv_port);
    const char *t = tsung_attr(k, "server_type");
    tsung_ind(c), tsung_sb_puts(b, "s:change_type { ");
    tsung_field(b, &first, "host", c->srv_port ? c->srv_host : tsung_attr(k, "host"), 0);
    tsung_field(b, &first, "port", c->srv_port ? port : tsung_attr(k, "port"), 1);
    tsung_field(b, &first, "server_type", c->srv_port ? (c->srv_tls ? "ssl" : "tcp") : t, 0);
    if (tsung_is_true(tsung_attr(k, "store"))) tsung_sb_puts(b, ", store = true");
    if (tsung_is_true(tsung_attr(k, "restore"))) tsung_sb_puts(b, ", restore = true");
    tsung_sb_printf(b, " } -- line %d\n", k->line);
    if (c->srv_port)
        tsung_note(c, k->line, "<change_type> now goes to %s:%d (--server)", c->srv_host, c->srv_port);
    if (strcmp(t, "tcp") && strcmp(t, "ssl") && strcmp(t, "tcp6") && strcmp(t, "ssl6") && strcmp(t, "tls"))
        tsung_fail_at(c, k, "<change_type server_type=\"%s\">: expected tcp or ssl", t);
    else if (!strncmp(t, "ssl", 3) || !strcmp(t, "tls"))
        c->tls_servers++;
}

/* Is `tag` one of the tags -x leaves out ("a,b")? */
static int excluded(ctx *c, const char *tag)
{
    const char *list = c->o->exclude_tags;
    size_t tl = tag ? strlen(tag) : 0;
    for (const char *p = list; tl && p && *p;) {
        size_t l = strcspn(p, ",");
        if (l == tl && !memcmp(p, tag, l)) return 1;
        p += l + (p[l] == ',');
    }
    return 0;
}

/* One statement of a session, transaction or loop body. */
static void emit_stmt(ctx *c, node *k)
{
    sbuf *b = &c->out;
    const char *nm = k->name;
    if (k->drop) {
        tsung_ind(c), tsung_sb_printf(b, "-- <%s> line %d left out (--skip-unsupported)\n", nm, k->line);
    } else if (!strcmp(nm, "request") && excluded(c, tsung_attr(k, "tag"))) {
        tsung_ind(c),
            tsung_sb_printf(b, "-- <request> line %d left out (its tag is excluded with -x)\n", k->line);
    } else if (!strcmp(nm, "request")) {
        emit_request(c, k);
    } else if (!strcmp(nm, "thinktime")) {
        emit_thinktime(c, k);
    } else if (!strcmp(nm, "setdynvars")) {
        emit_setdynvars(c, k);
    } else if (!strcmp(nm, "transaction")) {
        tsung_ind(c), tsung_sb_puts(b, "s:transaction("), tsung_lua_cstr(b, tsung_attr(k, "name"));
        tsung_sb_printf(b, ", function() -- line %d\n", k->line);
        emit_function_body(c, k);
        tsung_ind(c), tsung_sb_puts(b, "end)\n");
    } else if (!strcmp(nm, "for")) {
        tsung_ind(c), tsung_sb_puts(b, "for _ in s:for_loop("), tsung_lua_cstr(b, tsung_attr(k, "var"));
        tsung_sb_puts(b, ", "), tsung_lua_cstr(b, tsung_attr(k, "from"));
        tsung_sb_puts(b, ", "), tsung_lua_cstr(b, tsung_attr(k, "to"));
        tsung_sb_puts(b, ", "), tsung_lua_cstr(b, tsung_attr(k, "incr") ? tsung_attr(k, "incr") : "1");
        tsung_sb_printf(b, ") do -- line %d\n", k->line);
        emit_loop_body(c, k);
    } else if (!strcmp(nm, "foreach")) {
        int first = 1;
        tsung_ind(c), tsung_sb_puts(b, "for _ in s:foreach("), tsung_lua_cstr(b, tsung_attr(k, "name"));
        tsung_sb_puts(b, ", "), tsung_lua_cstr(b, tsung_attr(k, "in"));
        tsung_sb_puts(b, ", { ");
        tsung_field(b, &first, "include", tsung_attr(k, "include"), 0);
        tsung_field(b, &first, "exclude", tsung_attr(k, "exclude"), 0);
        tsung_sb_printf(b, "%s}) do -- line %d\n", first ? "" : " ", k->line);
        emit_loop_body(c, k);
    } else if (!strcmp(nm, "if")) {
        const char *v = NULL, *op = compare_of(c, k, &v);
        if (!op) return;
        tsung_ind(c), tsung_sb_puts(b, "if s:test("), tsung_lua_cstr(b, tsung_attr(k, "var"));
        tsung_sb_printf(b, ", \"%s\", ", op), tsung_lua_cstr(b, v);
        tsung_sb_printf(b, ") then -- line %d\n", k->line);
        c->indent++, emit_block(c, k), c->indent--;
        tsung_ind(c), tsung_sb_puts(b, "end\n");
    } else if (!strcmp(nm, "repeat")) {
        emit_repeat(c, k);
    } else if (!strcmp(nm, "abort")) {
        const char *t = tsung_attr(k, "type");
        tsung_ind(c), tsung_sb_printf(b, "s:abort(\"%s\") -- line %d\n",
                                      t && !strcmp(t, "all") ? "all" : "session", k->line);
    } else if (!strcmp(nm, "change_type")) {
        emit_change_type(c, k);
    } else if (!strcmp(nm, "while") || !strcmp(nm, "until")) {
        if (strcmp(k->parent->name, "repeat"))
            tsung_note(c, k->line, "<%s> outside a <repeat> has no effect", nm);
    } else { /* set_option, interaction */
        const char *what = tsung_attr(k, "name")     ? tsung_attr(k, "name")
                           : tsung_attr(k, "action") ? tsung_attr(k, "action")
                                                     : tsung_attr(k, "new_type");
        tsung_note(c, k->line, "<%s %s> has no effect here", nm, what ? what : "");
        tsung_ind(c), tsung_sb_printf(b, "-- <%s> line %d: no effect here\n", nm, k->line);
    }
}

/* ---- <match do="loop" loop_back="N">: the request's N earlier actions, run again ---- */

/* How many of Tsung's actions element k is. Tsung numbers the steps of a session in one flat list
 * (ts_config.erl), and loop_back counts back in it: a request (unless -x leaves it out), a
 * thinktime, setdynvars, change_type, set_option, interaction or abort is one; a transaction, for
 * or foreach puts a start and an end around its body, an <if> a start before it, a <repeat> an end
 * after it. */
static long long actions_of(ctx *c, const node *k)
{
    static const char *const one[] = {"thinktime", "setdynvars",  "change_type", "set_option",
                                      "abort",     "interaction", NULL};
    if (!strcmp(k->name, "request")) return !excluded(c, tsung_attr(k, "tag"));
    if (tsung_in_list(one, k->name)) return 1;
    long long n = 0;
    for (int i = 0; i < k->nkids; i++)
        n += actions_of(c, k->kids[i]);
    if (!strcmp(k->name, "transaction") || !strcmp(k->name, "for") || !strcmp(k->name, "foreach"))
        return n + 2;
    return n + (!strcmp(k->name, "if") || !strcmp(k->name, "repeat"));
}

/* The <match do="loop" loop_back="N"> (N > 0) of request k, N in *back; NULL when it has none
 * (or is left out). Two such matches must go back as far. */
static node *loop_back_of(ctx *c, node *k, long long *back)
{
    node *m = NULL;
    if (strcmp(k->name, "request") || k->drop || excluded(c, tsung_attr(k, "tag"))) return NULL;
    for (int i = 0; i < k->nkids; i++) {
        node *x = k->kids[i];
        const char *d = tsung_attr(x, "do"), *v = tsung_attr(x, "loop_back");
        long long n = v ? strtoll(v, NULL, 10) : 0;
        if (strcmp(x->name, "match") || !d || strcmp(d, "loop") || n <= 0) continue;
        if (m && n != *back) {
            tsung_fail_at(c, x,
                          "<match loop_back=\"%s\">: another match of this request goes back %lld; "
                          "give both the same loop_back",
                          v, *back);
            return NULL;
        }
        m = x, *back = n;
    }
    return m;
}

/* The blocks that requests with a loop_back run again, among n's children: the block of request
 * j starts at the child where the N actions before it start (the fewest children that hold them).
 * Returns NULL when no child goes back, or on a refusal: a block that would start inside an
 * element or outside n (Lua runs whole elements again), or two that overlap without one holding
 * the other whole. Else 4 x nkids ints (malloc'ed): top[i], the request of the widest block
 * starting at child i (-1: none), then below[j], the next narrower block starting where j's
 * does, then room the search used. */
static int *loop_blocks(ctx *c, node *n)
{
    int *top = NULL, *below = NULL, *start = NULL, *open = NULL, nopen = 0;
    long long *before = NULL; /* before[i]: the actions of children 0..i-1 */
    for (int j = 0; j < n->nkids && !c->failed; j++) {
        long long back = 0;
        node *m = loop_back_of(c, n->kids[j], &back);
        if (!m) continue;
        if (!top) {
            top = malloc(4 * (size_t)n->nkids * sizeof *top);
            before = malloc(((size_t)n->nkids + 1) * sizeof *before);
            if (!top || !before) abort();
            below = top + n->nkids, start = below + n->nkids, open = start + n->nkids;
            before[0] = 0;
            for (int i = 0; i < n->nkids; i++)
                top[i] = below[i] = start[i] = -1, before[i + 1] = before[i] + actions_of(c, n->kids[i]);
        }
        long long want = before[j] - back;
        if (want < 0) {
            if (!strcmp(n->name, "session"))
                tsung_fail_at(c, m,
                              "<match loop_back=\"%lld\">: only %lld %s before this request in its session",
                              back, before[j], before[j] == 1 ? "action comes" : "actions come");
            else
                tsung_fail_at(c, m,
                              "<match loop_back=\"%lld\">: going back leaves the <%s> of line %d (%lld %s "
                              "before this request inside it)",
                              back, n->name, n->line, before[j],
                              before[j] == 1 ? "action comes" : "actions come");
            break;
        }
        int lo = 0, hi = j; /* the last child i with before[i] <= want */
        while (lo < hi) {
            int mid = lo + (hi - lo + 1) / 2;
            if (before[mid] <= want)
                lo = mid;
            else
                hi = mid - 1;
        }
        if (before[lo] != want) {
            tsung_fail_at(c, m,
                          "<match loop_back=\"%lld\">: going back lands inside the <%s> of line %d "
                          "(loop_back=\"%lld\" or \"%lld\" would run it whole or leave it out)",
                          back, n->kids[lo]->name, n->kids[lo]->line, before[j] - before[lo],
                          before[j] - before[lo + 1]);
            break;
        }
        /* the blocks found so far lie inside this one or end before it starts */
        while (nopen && open[nopen - 1] >= lo && !c->failed) {
            int k = open[--nopen];
            if (start[k] < lo)
                tsung_fail_at(c, m,
                              "<match loop_back>: the actions it runs again overlap those of the "
                              "<match loop_back> of line %d; one must hold the other whole",
                              loop_back_of(c, n->kids[k], &back)->line);
        }
        start[j] = lo, below[j] = top[lo], top[lo] = j, open[nopen++] = j;
    }
    free(before);
    if (c->failed) free(top), top = NULL;
    return top;
}

/* Children from..to-1 of n, a block that a request's loop_back runs again as
 * s:loop_back(N, function() ... end) around its children, the request last. `top` as loop_blocks
 * made it (NULL: no block); a block written is taken out of it. */
static void emit_kids(ctx *c, node *n, int from, int to, int *top)
{
    for (int i = from; i < to && !c->failed;) {
        int end = top ? top[i] : -1;
        if (end < 0) {
            emit_stmt(c, n->kids[i++]);
            continue;
        }
        top[i] = top[n->nkids + end]; /* the next narrower block starting here, if any, goes inside */
        long long back = 0;
        node *m = loop_back_of(c, n->kids[end], &back);
        if (c->indent > 80) return tsung_fail_at(c, m, "control flow nested too deeply");
        tsung_ind(c);
        tsung_sb_printf(&c->out,
                        "s:loop_back(%lld, function() -- <match do=\"loop\"> line %d runs these again\n",
                        back, m->line);
        int loops = c->loops;
        c->loops = 0;
        c->indent++, emit_kids(c, n, i, end + 1, top), c->indent--;
        c->loops = loops;
        tsung_ind(c), tsung_sb_puts(&c->out, "end)\n");
        i = end + 1;
    }
}

static void emit_block(ctx *c, node *n)
{
    if (c->indent > 80) return tsung_fail_at(c, n, "control flow nested too deeply");
    int *top = loop_blocks(c, n);
    if (!c->failed) emit_kids(c, n, 0, n->nkids, top);
    free(top);
}

/* The probability or weight of each HTTP session; probabilities must sum to 100 (as Tsung
 * wants) unless sessions were left out, when what is left keeps them as weights. */
static void emit_sessions(ctx *c)
{
    sbuf *b = &c->out;
    node *ss = tsung_section(c, "sessions");
    double sum = 0;
    int nprob = 0, nweight = 0, n = 0;
    for (int i = 0; i < ss->nkids; i++) {
        node *k = ss->kids[i];
        if (k->drop) continue;
        n++;
        const char *p = tsung_attr(k, "probability"), *w = tsung_attr(k, "weight");
        if (p && w) return tsung_fail_at(c, k, "<session> has both probability and weight");
        if (!p && !w) return tsung_fail_at(c, k, "<session> needs probability or weight");
        sum += tsung_positive(c, k, p ? "probability" : "weight", 1);
        nprob += !!p, nweight += !!w;
        if (tsung_attr(k, "persistent"))
            tsung_note(c, k->line, "persistent has no effect: a closed connection is always reopened");
        if (tsung_attr(k, "bidi")) tsung_note(c, k->line, "bidi has no effect here");
    }
    if (c->failed) return;
    if (!n) return tsung_fail_at(c, ss, "no HTTP <session> left to run");
    if (nprob && nweight) return tsung_fail_at(c, ss, "sessions mix probability and weight; use one");
    int as_weight = nweight || (c->dropped_sessions && fabs(sum - 100) > 0.05);
    if (nprob && !as_weight && fabs(sum - 100) > 0.05)
        return tsung_fail_at(c, ss, "session probabilities sum to %g, not 100", sum);
    if (sum <= 0) return tsung_fail_at(c, ss, "every session has probability 0: nothing to run");
    if (nprob && as_weight)
        tsung_note(c, ss->line, "the HTTP sessions left keep their probabilities as weights");
    tsung_sb_printf(b, "  sessions = { -- line %d\n", ss->line);
    c->indent = 3;
    for (int i = 0; i < ss->nkids && !c->failed; i++) {
        node *k = ss->kids[i];
        if (k->drop) continue;
        const char *p = tsung_attr(k, "probability") ? tsung_attr(k, "probability") : tsung_attr(k, "weight");
        double d = 0;
        tsung_num_of(p, &d);
        tsung_sb_puts(b, "    { name = ");
        tsung_lua_cstr(b, tsung_attr(k, "name"));
        tsung_sb_printf(b, ", %s = ", as_weight ? "weight" : "probability");
        tsung_lua_num(b, d);
        tsung_sb_printf(b, ", run = T:session(function(s) -- line %d\n", k->line);
        emit_block(c, k);
        tsung_sb_puts(b, "    end) },\n");
    }
    tsung_sb_puts(b, "  },\n");
}

/* Pass 3: the whole scenario into c->out, or c->failed with the reason in c->err. */
void tsung_lua_write(ctx *c)
{
    sbuf *b = &c->out;
    const char *base = strrchr(c->file, '/') ? strrchr(c->file, '/') + 1 : c->file;
    size_t bl = strlen(base);
    if (bl > 4 && !strcmp(base + bl - 4, ".xml")) bl -= 4;
    tsung_sb_puts(b, "-- ");
    for (size_t i = 0; i < strlen(base); i++)
        tsung_sb_add(b, (unsigned char)base[i] < 32 ? "?" : base + i, 1);
    tsung_sb_puts(b, ": a Tsung configuration as a parrot scenario (written by `parrot import tsung`).\n"
                     "-- Each part names the line of the XML it comes from.\n"
                     "local http = require \"parrot.http\" -- luacheck: ignore\n"
                     "local ts = require \"parrot.tsung\"\n\n");
    node *cl = tsung_section(c, "clients");
    for (int i = 0; cl && i < cl->nkids; i++) {
        node *k = cl->kids[i];
        tsung_sb_printf(b, "-- <client> line %d:", k->line);
        for (char **a = k->attr; a && a[0]; a += 2) {
            tsung_sb_printf(b, " %s=", a[0]);
            for (const char *p = a[1]; *p && p - a[1] < 80; p++)
                tsung_sb_add(b, (unsigned char)*p < 32 ? "?" : p, 1);
        }
        tsung_sb_puts(b, " (a hint only: parrot splits the load over its workers)\n");
        if (k->nkids) tsung_note(c, k->line, "<client> source addresses (<ip>, <iprange>) are not used");
    }
    if (cl && cl->nkids)
        tsung_note(
            c, cl->line,
            "<clients> are hints only (maxusers, cpu, weight): parrot splits the load over its workers");
    node *mon = tsung_section(c, "monitoring");
    if (mon) tsung_note(c, mon->line, "<monitoring> is not done here (use the servers' own tools)");
    tsung_emit_config(c);
    if (c->failed) return;
    tsung_sb_puts(b, "return parrot.scenario {\n  name = ");
    tsung_lua_str(b, base, bl);
    tsung_sb_puts(b, ",\n");
    size_t files_at = b->len;
    tsung_emit_load(c);
    if (!c->failed) emit_sessions(c);
    if (c->failed) return;
    tsung_sb_puts(b, "}\n");
    /* what the sessions found goes right after the name: the files, certificates not checked */
    sbuf f = {0};
    if (c->tls_servers) {
        tsung_sb_puts(&f,
                      "  insecure = true, -- servers of type ssl: Tsung 1.7 does not check certificates\n");
        tsung_note(c, tsung_section(c, "servers")->line,
                   "type=\"ssl\": certificates are not checked (Tsung 1.7 does not check them)");
    }
    if (c->nfiles) {
        tsung_sb_puts(&f, "  files = { -- file_server and contents_from_file files travel in the bundle\n");
        for (int i = 0; i < c->nfiles; i++)
            tsung_sb_puts(&f, "    "), tsung_lua_cstr(&f, c->files[i]), tsung_sb_puts(&f, ",\n");
        tsung_sb_puts(&f, "  },\n");
    }
    if (f.len) {
        sbuf all = {0};
        tsung_sb_add(&all, b->s, files_at);
        tsung_sb_add(&all, f.s, f.len);
        tsung_sb_add(&all, b->s + files_at, b->len - files_at);
        free(b->s);
        *b = all;
    }
    free(f.s);
}
