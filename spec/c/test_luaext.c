/* test_luaext: what scenarios can do with the C helpers — each case is a Lua snippet run in a
 * fresh-enough state with the helpers as the global `ext`, and it must return true. */
#include "luaext.h"

#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

#include "check.h"

static lua_State *L;

/* Runs `code`; the check passes when it returns true. Errors are printed with the description. */
static void lua_check(const char *desc, const char *code)
{
    int top = lua_gettop(L);
    int ok = luaL_dostring(L, code) == 0 && lua_toboolean(L, top + 1);
    if (!ok && lua_gettop(L) > top)
        printf("# %s: %s\n", desc, lua_tostring(L, -1) ? lua_tostring(L, -1) : "(false)");
    CHECK(ok, "%s", desc);
    lua_settop(L, top);
}

static void test_regex(void)
{
    lua_check("re_match returns the captures",
              "local a, b = ext.re_match('id=42&name=bob', 'id=(\\\\d+)&name=(\\\\w+)')\n"
              "return a == '42' and b == 'bob'");
    lua_check("re_match without groups returns the whole match",
              "return ext.re_match('total: 1234 items', '\\\\d+') == '1234'");
    lua_check("re_match with no match returns nil",
              "return ext.re_match('abc', 'x(y)') == nil and select('#', ext.re_match('abc', 'x')) == 1");
    lua_check("an unset group is \"\"", "local a, b, c = ext.re_match('ac', '(a)(b)?(c)')\n"
                                        "return a == 'a' and b == '' and c == 'c'");
    lua_check("init starts the search at a 1-based position, negative from the end",
              "return ext.re_match('a1 b2 c3', '\\\\w(\\\\d)', 4) == '2'"
              " and ext.re_match('a1 b2 c3', '\\\\w(\\\\d)', -2) == '3'"
              " and ext.re_match('abc', 'c', 10) == nil and ext.re_match('abc', '$', 4) == ''");
    lua_check("binary subjects and patterns with NUL bytes work",
              "return ext.re_match('a\\0b', '\\0(b)') == 'b'");
    lua_check("a bad pattern raises a message naming it and the offset",
              "local ok, err = pcall(ext.re_match, 'x', 'a(b')\n"
              "return not ok and err:find(\"bad regular expression 'a(b': \", 1, true) == 1"
              " and err:find('at offset 3', 1, true) ~= nil");
    lua_check("re_gmatch_all lists the first capture of every match",
              "local t = ext.re_gmatch_all('<a href=\"/1\"><a href=\"/2\"><a href=\"/3\">', "
              "'href=\"([^\"]+)\"')\n"
              "return #t == 3 and t[1] == '/1' and t[3] == '/3'");
    lua_check("re_gmatch_all without groups lists whole matches, {} when none",
              "local t = ext.re_gmatch_all('a1b22c333', '\\\\d+')\n"
              "return #t == 3 and t[2] == '22' and #ext.re_gmatch_all('abc', '\\\\d') == 0");
    lua_check("re_gmatch_all moves past empty matches", "return #ext.re_gmatch_all('abc', 'x*') == 4");
    lua_check("more patterns than the cache holds stay correct",
              "for i = 1, 600 do\n"
              "  if ext.re_match('n' .. i, 'n(' .. i .. ')') ~= tostring(i) then return false end\n"
              "end\n"
              "return ext.re_match('n7', 'n(7)') == '7'");
}

static void test_xpath(void)
{
    lua_check("xpath on sloppy HTML finds an attribute value",
              "local html = [[<html><body><form><input type=hidden name='token' value='s3cr3t'>"
              "<p>unclosed <b>tags<div>x</form>]]\n"
              "local t = ext.xpath(html, \"//input[@name='token']/@value\", true)\n"
              "return #t == 1 and t[1] == 's3cr3t'");
    lua_check("xpath node sets give each node's text",
              "local t = ext.xpath('<ul><li>one<li>two<li>three</ul>', '//li', true)\n"
              "return #t == 3 and t[1] == 'one' and t[3] == 'three'");
    lua_check("xpath on XML", "local t = ext.xpath('<?xml version=\"1.0\"?><r><item "
                              "id=\"7\">seven</item><item id=\"8\"/></r>',"
                              " '/r/item/@id')\n"
                              "return #t == 2 and t[1] == '7' and t[2] == '8'"
                              " and ext.xpath('<r><a>x</a></r>', 'string(/r/a)')[1] == 'x'");
    lua_check("count() and boolean() give one-element arrays",
              "local doc = '<r><a/><a/><a/></r>'\n"
              "return ext.xpath(doc, 'count(//a)')[1] == '3' and ext.xpath(doc, 'count(//a) > "
              "2')[1] == 'true'");
    lua_check("no match is {}", "return #ext.xpath('<r/>', '//nothing') == 0");
    lua_check("an unparseable XML document is {}",
              "return #ext.xpath('<r><unclosed></r', '//r') == 0 and #ext.xpath('', '//r') == 0");
    lua_check("a bad expression raises \"bad xpath 'EXPR'\"",
              "local ok, err = pcall(ext.xpath, '<r/>', '//[')\n"
              "local ok2, err2 = pcall(ext.xpath, '<r/>', 'nosuchfn(1)')\n"
              "return not ok and err == \"bad xpath '//['\" and not ok2 and err2 == \"bad xpath "
              "'nosuchfn(1)'\"");
    lua_check("documents over 64 MB are refused",
              "local ok, err = pcall(ext.xpath, string.rep('x', 64 * 1024 * 1024 + 1), '//a')\n"
              "return not ok and err:find('over the 64 MB limit', 1, true) ~= nil");
    lua_check("a bad expression raises even when the document is unparseable",
              "return not pcall(ext.xpath, '', '//[')");
}

static void test_codecs(void)
{
    lua_check("url_encode is form encoding",
              "return ext.url_encode('a b&c=d/é~-._') == 'a+b%26c%3Dd%2F%C3%A9~-._'");
    lua_check("url_decode reverses it and keeps malformed escapes",
              "local s = 'x y+z%&=/?\\0\\255 ü'\n"
              "return ext.url_decode(ext.url_encode(s)) == s and ext.url_decode('100%+%zz%4') == "
              "'100% %zz%4'"
              " and ext.url_decode('%41%6a') == 'Aj'");
    lua_check("html_unescape decodes named and numeric entities to UTF-8",
              "return ext.html_unescape('&lt;a href=&quot;x?a=1&amp;b=2&quot;&gt; it&#39;s "
              "&#233;&#x20AC;&#X1F600;')"
              " == '<a href=\"x?a=1&b=2\"> it\\'s \\195\\169\\226\\130\\172\\240\\159\\152\\128'");
    lua_check("html_unescape leaves unknown or broken entities alone",
              "return ext.html_unescape('AT&T &bogus; &#; &#xZZ; & &amp') == 'AT&T &bogus; &#; "
              "&#xZZ; & &amp'"
              " and ext.html_unescape('&#0;&#xD800;') == '\\239\\191\\189\\239\\191\\189'");
    lua_check("base64 round trip for Basic auth",
              "return ext.base64_encode('Aladdin:open sesame') == 'QWxhZGRpbjpvcGVuIHNlc2FtZQ=='"
              " and ext.base64_decode('QWxhZGRpbjpvcGVuIHNlc2FtZQ==') == 'Aladdin:open sesame'"
              " and ext.base64_encode('') == '' and ext.base64_decode('') == ''"
              " and ext.base64_decode(ext.base64_encode('\\0\\1\\2\\255')) == '\\0\\1\\2\\255'");
    lua_check("base64_decode of garbage is nil and a message",
              "local v, err = ext.base64_decode('not*base64')\n"
              "return v == nil and err == 'invalid base64'");
    lua_check("sha256_hex and md5_hex", "return ext.sha256_hex('abc') == "
                                        "'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'"
                                        " and ext.md5_hex('abc') == '900150983cd24fb0d6963f7d28e17f72'"
                                        " and ext.md5_hex('') == 'd41d8cd98f00b204e9800998ecf8427e'");
}

static void test_random(void)
{
    lua_check("random_string gives n alphanumerics, different each time",
              "local a, b = ext.random_string(32), ext.random_string(32)\n"
              "return #a == 32 and a:match('^[%w]+$') ~= nil and a ~= b and ext.random_string(0) == ''");
    lua_check("random_string covers the whole alphabet",
              "local seen, n = {}, 0\n"
              "for c in ext.random_string(20000):gmatch('.') do if not seen[c] then seen[c] = true "
              "n = n + 1 end end\n"
              "return n == 62");
    lua_check("urandom_bytes gives n bytes",
              "local a = ext.urandom_bytes(16)\n"
              "return #a == 16 and a ~= ext.urandom_bytes(16) and ext.urandom_bytes(0) == ''");
    lua_check("negative sizes are refused", "return not pcall(ext.random_string, -1)");
}

/* Counters every lua_State of the process shares (Tsung's user ids, its file positions). */
static void test_shared(void)
{
    lua_State *other = luaL_newstate();
    luaL_openlibs(other);
    luaext_open(other);
    lua_setglobal(other, "ext");
    lua_check("shared_add counts from 1; another name counts on its own",
              "return ext.shared_add('spec a') == 1 and ext.shared_add('spec a') == 2 and "
              "ext.shared_add('spec b', 5) == 5");
    int rc = luaL_dostring(other, "return ext.shared_add('spec a')");
    CHECK(rc == 0 && lua_tointeger(other, -1) == 3,
          "another lua_State (another thread's) sees the same counter");
    lua_close(other);
}

int main(void)
{
    L = luaL_newstate();
    luaL_openlibs(L);
    int pushed = luaext_open(L); /* CHECK evaluates its condition twice: no side effects in it */
    CHECK(pushed == 1 && lua_gettop(L) == 1 && lua_istable(L, -1), "luaext_open pushes one table");
    lua_setglobal(L, "ext");
    CHECK(lua_gettop(L) == 0, "the stack is balanced after opening");
    luaext_open(L);
    lua_setglobal(L, "ext2");
    lua_check("opening twice shares one state", "return ext2.re_match('ab', 'a(b)') == 'b'");
    test_regex();
    test_xpath();
    test_codecs();
    test_random();
    test_shared();
    CHECK(lua_gettop(L) == 0, "the stack is balanced at the end");
    lua_close(L);
    return check_done();
}
