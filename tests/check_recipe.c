/* check_recipe.c — recipe parsing, printing and matching (last rule wins, default roles). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "quant/recipe.h"
#include "test_util.h"

/* ---- parsing --------------------------------------------------------------- */

START_TEST(parse_rules_and_params)
{
    struct qrecipe r;
    qerr err;
    ck_assert_int_eq(qrecipe_parse(" *=int:bits=8, granularity=channel ; conv1.*=float;"
                                   "fc.weight = int : bits=4\n*.bias=int:bits=8",
                                   &r, &err), 0);
    ck_assert_int_eq(r.n, 4);
    ck_assert_str_eq(r.rules[0].glob, "*");
    ck_assert_str_eq(r.rules[0].stages[0].scheme, "int");
    ck_assert_str_eq(r.rules[0].stages[0].params, "bits=8, granularity=channel");
    ck_assert_str_eq(r.rules[1].stages[0].scheme, "float");
    ck_assert_str_eq(r.rules[1].stages[0].params, "");
    ck_assert_str_eq(r.rules[2].glob, "fc.weight");
    ck_assert_str_eq(r.rules[2].stages[0].scheme, "int");
    ck_assert_str_eq(r.rules[2].stages[0].params, "bits=4");
    ck_assert_int_eq(r.rules[0].names_leaf, 0);
    ck_assert_int_eq(r.rules[1].names_leaf, 0);
    ck_assert_int_eq(r.rules[2].names_leaf, 1);
    ck_assert_int_eq(r.rules[3].names_leaf, 1);
    char *text = qrecipe_text(&r);
    ck_assert_str_eq(text, "*=int:bits=8, granularity=channel;conv1.*=float;"
                           "fc.weight=int:bits=4;*.bias=int:bits=8");
    /* the printed text parses back to the same rules */
    struct qrecipe again;
    ck_assert_int_eq(qrecipe_parse(text, &again, &err), 0);
    ck_assert_int_eq(again.n, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(again.rules[i].glob, r.rules[i].glob);
        ck_assert_str_eq(again.rules[i].stages[0].params, r.rules[i].stages[0].params);
    }
    free(text);
    qrecipe_clear(&again);
    qrecipe_clear(&r);
}
END_TEST

START_TEST(parse_pipelines)
{
    struct qrecipe r;
    qerr err;
    ck_assert_int_eq(qrecipe_parse("*=prune:pattern=2:4+int:bits=4; fc*=prune : sparsity=0.5 + "
                                   "q4_0;x=int:percentile=1e+2",
                                   &r, &err), 0);
    ck_assert_int_eq(r.n, 3);
    ck_assert_int_eq(r.rules[0].n_stages, 2);
    ck_assert_str_eq(r.rules[0].stages[0].scheme, "prune");
    ck_assert_str_eq(r.rules[0].stages[0].params, "pattern=2:4");
    ck_assert_str_eq(r.rules[0].stages[1].scheme, "int");
    ck_assert_str_eq(r.rules[0].stages[1].params, "bits=4");
    ck_assert_int_eq(r.rules[1].n_stages, 2);
    ck_assert_str_eq(r.rules[1].stages[0].params, "sparsity=0.5");
    ck_assert_str_eq(r.rules[1].stages[1].scheme, "q4_0");
    /* a '+' inside a value is not a new stage */
    ck_assert_int_eq(r.rules[2].n_stages, 1);
    ck_assert_str_eq(r.rules[2].stages[0].params, "percentile=1e+2");
    char *t = qrecipe_text(&r);
    ck_assert_str_eq(t, "*=prune:pattern=2:4+int:bits=4;fc*=prune:sparsity=0.5+q4_0;"
                        "x=int:percentile=1e+2");
    free(t);
    qrecipe_clear(&r);
    ck_assert_int_eq(qrecipe_parse("*=a+b+c", &r, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "at most 2 schemes"));
    ck_assert_int_eq(qrecipe_parse("*=prune+float", &r, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "float cannot be joined"));
    ck_assert_int_eq(qrecipe_parse("*=prune+", &r, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "no scheme after '+'"));
    /* qrecipe_add takes a single scheme, or a whole right-hand side */
    ck_assert_int_eq(qrecipe_add(&r, "w", "prune", "pattern=4:8+int:bits=8", &err), 0);
    ck_assert_int_eq(r.rules[0].n_stages, 2);
    ck_assert_str_eq(r.rules[0].stages[1].params, "bits=8");
    qrecipe_clear(&r);
}
END_TEST

START_TEST(parse_empty)
{
    struct qrecipe r;
    qerr err;
    ck_assert_int_eq(qrecipe_parse("", &r, &err), 0);
    ck_assert_int_eq(r.n, 0);
    ck_assert_int_eq(qrecipe_parse(" ; ;\n ", &r, &err), 0);
    ck_assert_int_eq(r.n, 0);
    char *t = qrecipe_text(&r);
    ck_assert_str_eq(t, "");
    free(t);
}
END_TEST

static void expect_error(const char *text, const char *phrase)
{
    struct qrecipe r;
    qerr err = {{0}};
    ck_assert_msg(qrecipe_parse(text, &r, &err) == -1, "'%s' parsed", text);
    ck_assert_int_eq(r.n, 0);
    ck_assert_msg(strstr(err.msg, phrase) != NULL, "'%s': message '%s' lacks '%s'", text,
                  err.msg, phrase);
}

START_TEST(parse_errors_name_the_rule)
{
    expect_error("conv*", "rule 1 'conv*': expected GLOB=SCHEME");
    expect_error("*=int;conv1.weight=", "rule 2 'conv1.weight=': no scheme after '='");
    expect_error("=int", "rule 1 '=int': no tensor pattern");
    expect_error("*=in t", "'in t' is not a scheme name");
    expect_error("*=int:", "nothing after ':'");
    expect_error("*=float:bits=4", "float takes no parameters");
    expect_error("*=a/b/c", "not a scheme name");
}
END_TEST

/* ---- matching ---------------------------------------------------------------- */

START_TEST(last_matching_rule_wins)
{
    struct qrecipe r;
    qerr err;
    ck_assert_int_eq(qrecipe_parse("*=int:bits=8;conv*=int:bits=4;conv2.weight=float", &r, &err),
                     0);
    ck_assert_int_eq(qrecipe_match(&r, "fc.weight", QROLE_WEIGHT), 0);
    ck_assert_int_eq(qrecipe_match(&r, "conv1.weight", QROLE_WEIGHT), 1);
    ck_assert_int_eq(qrecipe_match(&r, "conv2.weight", QROLE_WEIGHT), 2);
    qrecipe_clear(&r);
}
END_TEST

START_TEST(biases_and_norms_stay_float_unless_named)
{
    struct qrecipe r;
    qerr err;
    ck_assert_int_eq(qrecipe_parse("*=int:bits=8;conv1.*=int:bits=4", &r, &err), 0);
    ck_assert_int_eq(qrecipe_match(&r, "conv1.bias", QROLE_BIAS), -1);
    ck_assert_int_eq(qrecipe_match(&r, "bn.running_var", QROLE_NORM), -1);
    ck_assert_int_eq(qrecipe_match(&r, "conv1.weight", QROLE_WEIGHT), 1);
    ck_assert_int_eq(qrecipe_add(&r, "*.bias", "int", "bits=8", &err), 0);
    ck_assert_int_eq(qrecipe_match(&r, "conv1.bias", QROLE_BIAS), 2);
    ck_assert_int_eq(qrecipe_match(&r, "bn.running_var", QROLE_NORM), -1);
    ck_assert_int_eq(qrecipe_add(&r, "bn.running_var", "float", "", &err), 0);
    ck_assert_int_eq(qrecipe_match(&r, "bn.running_var", QROLE_NORM), 3);
    /* a later catch-all does not take the bias back */
    ck_assert_int_eq(qrecipe_add(&r, "*", "float", NULL, &err), 0);
    ck_assert_int_eq(qrecipe_match(&r, "conv1.bias", QROLE_BIAS), 2);
    ck_assert_int_eq(qrecipe_match(&r, "conv1.weight", QROLE_WEIGHT), 4);
    qrecipe_clear(&r);
}
END_TEST

START_TEST(glob_details)
{
    struct qrecipe r;
    qerr err;
    ck_assert_int_eq(qrecipe_parse("layers.?.weight=int;blk.[0-3].*=float", &r, &err), 0);
    ck_assert_int_eq(qrecipe_match(&r, "layers.4.weight", QROLE_WEIGHT), 0);
    ck_assert_int_eq(qrecipe_match(&r, "layers.10.weight", QROLE_WEIGHT), -1);
    ck_assert_int_eq(qrecipe_match(&r, "blk.2.attn.weight", QROLE_WEIGHT), 1);
    ck_assert_int_eq(qrecipe_match(&r, "blk.7.attn.weight", QROLE_WEIGHT), -1);
    qrecipe_clear(&r);
    /* an escaped name matches only itself, metacharacters and all */
    char *g = qglob_escape("odd[1]*name");
    ck_assert_str_eq(g, "odd\\[1\\]\\*name");
    ck_assert_int_eq(qrecipe_add(&r, g, "int", "", &err), 0);
    ck_assert_int_eq(r.rules[0].names_leaf, 1);
    ck_assert_int_eq(qrecipe_match(&r, "odd[1]*name", QROLE_BIAS), 0);
    ck_assert_int_eq(qrecipe_match(&r, "odd1xname", QROLE_WEIGHT), -1);
    free(g);
    qrecipe_clear(&r);
}
END_TEST

START_TEST(remove_and_copy)
{
    struct qrecipe r, c;
    qerr err;
    ck_assert_int_eq(qrecipe_parse("a=int;b=float;c=int:bits=2", &r, &err), 0);
    ck_assert_int_eq(qrecipe_copy(&r, &c, &err), 0);
    qrecipe_remove(&r, 1);
    char *t = qrecipe_text(&r);
    ck_assert_str_eq(t, "a=int;c=int:bits=2");
    free(t);
    t = qrecipe_text(&c);
    ck_assert_str_eq(t, "a=int;b=float;c=int:bits=2");
    free(t);
    qrecipe_remove(&r, 7); /* out of range: no change */
    ck_assert_int_eq(r.n, 2);
    qrecipe_clear(&r);
    qrecipe_clear(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recipe");
    TCase *core = tcase_create("Core");
    tcase_add_test(core, parse_rules_and_params);
    tcase_add_test(core, parse_empty);
    tcase_add_test(core, parse_pipelines);
    tcase_add_test(core, last_matching_rule_wins);
    tcase_add_test(core, biases_and_norms_stay_float_unless_named);
    tcase_add_test(core, glob_details);
    tcase_add_test(core, remove_and_copy);
    suite_add_tcase(s, core);
    TCase *errors = tcase_create("Errors");
    tcase_add_test(errors, parse_errors_name_the_rule);
    suite_add_tcase(s, errors);
    return tu_run(s);
}
