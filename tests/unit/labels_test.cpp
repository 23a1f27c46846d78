// Label selectors and name/label syntax: parsing, matching and every error, compared with the
// strings k8s.io/apimachinery produces for the same input.
#include "orch/labels.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using json = nlohmann::json;
using orch::LabelSelector;

namespace {

LabelSelector ParseLabels(const std::string& text) {
  orch::Result<LabelSelector> s = LabelSelector::Parse(text);
  INFO(text << ": " << s.status().ToString());
  REQUIRE(s.ok());
  return *s;
}

std::string LabelError(const std::string& text) {
  orch::Result<LabelSelector> s = LabelSelector::Parse(text);
  INFO(text);
  REQUIRE_FALSE(s.ok());
  REQUIRE(s.status().code() == orch::StatusCode::kInvalidArgument);
  return s.status().message();
}

const std::string kQualifiedNameRegex =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const std::string kLabelValueRegex =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const std::string kSubdomainRegex =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

}  // namespace

TEST_CASE("Label selectors parse every operator into canonical requirements") {
  LabelSelector s = ParseLabels("a=b,c!=d,e in (y,x),f notin (z),g,!h,i==j,k>3,l<10");
  CHECK(s.String() == "a=b,c!=d,e in (x,y),f notin (z),g,!h,i==j,k>3,l<10");
  CHECK(s.requirements().size() == 9);

  CHECK(ParseLabels("").Empty());
  CHECK(ParseLabels("  ").Empty());
  CHECK(ParseLabels("z=1, a = 2").String() == "a=2,z=1");  // sorted by key, spaces skipped
  CHECK(ParseLabels("x in (foo,,baz),y,z notin ()").String() == "x in (,baz,foo),y,z notin ()");
  CHECK(ParseLabels("x in (in)").String() == "x in (in)");  // keywords are values here
  CHECK(ParseLabels("x=").String() == "x=");
  CHECK(ParseLabels("example.com/app=web").String() == "example.com/app=web");
}

TEST_CASE("Label selectors match like upstream") {
  const json labels = {{"app", "web"}, {"tier", "front"}, {"n", "5"}};
  auto matches = [&](const std::string& sel) { return ParseLabels(sel).Matches(labels); };
  CHECK(matches(""));
  CHECK(matches("app=web"));
  CHECK(matches("app==web"));
  CHECK_FALSE(matches("app=db"));
  CHECK(matches("app!=db"));
  CHECK(matches("missing!=x"));  // != matches when the key is absent
  CHECK(matches("app in (db,web)"));
  CHECK_FALSE(matches("app notin (web)"));
  CHECK(matches("missing notin (web)"));
  CHECK(matches("tier"));
  CHECK_FALSE(matches("!tier"));
  CHECK(matches("!missing"));
  CHECK(matches("n>4"));
  CHECK_FALSE(matches("n>5"));
  CHECK(matches("n<6"));
  CHECK_FALSE(matches("app>1"));  // not an integer label value
  CHECK(matches("app=web,tier=front"));
  CHECK_FALSE(matches("app=web,tier=back"));
  CHECK(ParseLabels("x!=y").Matches(nullptr));
  CHECK_FALSE(LabelSelector::Nothing().Matches(labels));
  CHECK(LabelSelector().Matches(labels));
}

TEST_CASE("Label selector syntax errors use upstream's words") {
  CHECK(LabelError("a b") ==
        "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt");
  CHECK(LabelError("x in a") == "unable to parse requirement: found 'a' expected: '('");
  CHECK(LabelError("x in (a b)") == "unable to parse requirement: found 'b', expected: ',' or ')'");
  CHECK(LabelError("x in (a") == "unable to parse requirement: found '', expected: ',' or ')'");
  CHECK(LabelError("x in (=)") ==
        "unable to parse requirement: found '=', expected: ',', ')' or identifier");
  CHECK(LabelError("x=(") == "unable to parse requirement: found '(', expected: identifier");
  CHECK(LabelError("!=a") == "found '!=', expected: !, identifier, or 'end of string'");
  CHECK(LabelError("! =a") == "unable to parse requirement: found '=', expected: identifier");
  CHECK(LabelError("a=b c") == "found 'c', expected: ',' or 'end of string'");
  CHECK(LabelError("a=b,") == "found '', expected: identifier after ','");
  CHECK(LabelError(",a") == "found ',', expected: !, identifier, or 'end of string'");
  CHECK(LabelError("!a=b") == "found '=', expected: ',' or 'end of string'");
}

TEST_CASE("Label selector key and value errors use upstream's words") {
  CHECK(LabelError("a_/b=c") ==
        "unable to parse requirement: <nil>: Invalid value: \"a_/b\": prefix part " +
            kSubdomainRegex);
  CHECK(LabelError("-x=c") ==
        "unable to parse requirement: <nil>: Invalid value: \"-x\": name part " +
            kQualifiedNameRegex);
  CHECK(LabelError("/x") ==
        "unable to parse requirement: <nil>: Invalid value: \"/x\": prefix part must be "
        "non-empty");
  CHECK(LabelError("a/b/c") ==
        "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name " +
            kQualifiedNameRegex +
            " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
  CHECK(LabelError(std::string(64, 'k') + "=v") ==
        "unable to parse requirement: <nil>: Invalid value: \"" + std::string(64, 'k') +
            "\": name part must be no more than 63 characters");
  CHECK(LabelError("app=-bad") ==
        "unable to parse requirement: values[0][app]: Invalid value: \"-bad\": " +
            kLabelValueRegex);
  CHECK(LabelError("app=" + std::string(64, 'v')) ==
        "unable to parse requirement: values[0][app]: Invalid value: \"" + std::string(64, 'v') +
            "\": must be no more than 63 characters");
  CHECK(LabelError("n>x1") ==
        "unable to parse requirement: values[0]: Invalid value: \"x1\": for 'Gt', 'Lt' "
        "operators, the value must be an integer");
  CHECK(LabelError("n>-a") ==
        "unable to parse requirement: [values[0]: Invalid value: \"-a\": for 'Gt', 'Lt' "
        "operators, the value must be an integer, values[0][n]: Invalid value: \"-a\": " +
            kLabelValueRegex + "]");
}

TEST_CASE("LabelSelector objects convert like LabelSelectorAsSelector") {
  json sel = {{"matchLabels", {{"app", "web"}}},
              {"matchExpressions",
               {{{"key", "tier"}, {"operator", "In"}, {"values", {"front", "back"}}},
                {{"key", "canary"}, {"operator", "DoesNotExist"}}}}};
  orch::Result<LabelSelector> s = LabelSelector::FromJson(sel);
  REQUIRE(s.ok());
  CHECK(s->String() == "app=web,!canary,tier in (back,front)");
  CHECK(s->Matches({{"app", "web"}, {"tier", "front"}}));
  CHECK_FALSE(s->Matches({{"app", "web"}, {"tier", "front"}, {"canary", "1"}}));

  CHECK(LabelSelector::FromJson(json::object())->Empty());
  CHECK(LabelSelector::FromJson(nullptr)->IsNothing());
  CHECK(LabelSelector::FromMap({{"b", "2"}, {"a", "1"}}).String() == "a=1,b=2");

  auto error = [](const json& j) {
    orch::Result<LabelSelector> r = LabelSelector::FromJson(j);
    REQUIRE_FALSE(r.ok());
    return r.status().message();
  };
  CHECK(error({{"matchExpressions", {{{"key", "a"}, {"operator", "Foo"}}}}}) ==
        "\"Foo\" is not a valid label selector operator");
  CHECK(error({{"matchExpressions", {{{"key", "a"}, {"operator", "In"}}}}}) ==
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't "
        "be empty");
  CHECK(
      error({{"matchExpressions", {{{"key", "a"}, {"operator", "Exists"}, {"values", {"x"}}}}}}) ==
      "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not "
      "exist");
  CHECK(error({{"matchLabels", {{"a", "-x"}}}}) ==
        "values[0][a]: Invalid value: \"-x\": " + kLabelValueRegex);
  CHECK(error({{"matchLabels", {{"-a", "x"}}}}) ==
        "key: Invalid value: \"-a\": name part " + kQualifiedNameRegex);

  CHECK(orch::FormatLabelSelector(nullptr) == "<none>");
  CHECK(orch::FormatLabelSelector(json::object()) == "<none>");
  CHECK(orch::FormatLabelSelector({{"matchLabels", {{"app", "web"}}}}) == "app=web");
  CHECK(orch::FormatLabelSelector({{"matchExpressions", {{{"operator", "X"}}}}}) == "<error>");
  CHECK(orch::FormatLabels(json::object()) == "<none>");
  CHECK(orch::FormatLabels({{"run", "x"}, {"app", "y"}}) == "app=y,run=x");
}

TEST_CASE("LabelSelector validation reports upstream's field errors") {
  json sel = {{"matchLabels", {{"app", "-x"}}},
              {"matchExpressions",
               {{{"key", "a"}, {"operator", "In"}},
                {{"key", "b"}, {"operator", "Exists"}, {"values", {"v"}}},
                {{"key", "c!"}, {"operator", "Equals"}, {"values", {"ok"}}}}}};
  auto errors = orch::ValidateLabelSelector(sel, "spec.selector");
  REQUIRE(errors.size() == 5);
  CHECK(errors[0].ToString() ==
        "spec.selector.matchLabels: Invalid value: \"-x\": " + kLabelValueRegex);
  CHECK(errors[1].ToString() ==
        "spec.selector.matchExpressions[0].values: Required value: must be specified when "
        "`operator` is 'In' or 'NotIn'");
  CHECK(errors[2].ToString() ==
        "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when "
        "`operator` is 'Exists' or 'DoesNotExist'");
  CHECK(errors[3].ToString() ==
        "spec.selector.matchExpressions[2].operator: Invalid value: \"Equals\": not a valid "
        "selector operator");
  CHECK(errors[4].ToString() ==
        "spec.selector.matchExpressions[2].key: Invalid value: \"c!\": name part " +
            kQualifiedNameRegex);
  CHECK(orch::ValidateLabelSelector(nullptr, "spec.selector").empty());
  CHECK(orch::ValidateLabels({{"ok", "fine"}}, "metadata.labels").empty());
}

TEST_CASE("Name validators give upstream's messages") {
  using orch::IsDns1035Label;
  using orch::IsDns1123Label;
  using orch::IsDns1123Subdomain;
  CHECK(IsDns1123Subdomain("example.com").empty());
  CHECK(IsDns1123Subdomain("Example.com") == std::vector<std::string>{kSubdomainRegex});
  CHECK(IsDns1123Subdomain("a..b").size() == 1);
  CHECK(IsDns1123Subdomain(std::string(254, 'a')) ==
        std::vector<std::string>{"must be no more than 253 characters"});
  CHECK(IsDns1123Label("my-name").empty());
  CHECK(IsDns1123Label("a.b") == std::vector<std::string>{"must not contain dots"});
  CHECK(IsDns1123Label("A") ==
        std::vector<std::string>{
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
            "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
            "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"});
  CHECK(IsDns1123Label(std::string(64, 'a')) ==
        std::vector<std::string>{"must be no more than 63 characters"});
  CHECK(IsDns1035Label("1abc") ==
        std::vector<std::string>{
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
            "with an alphabetic character, and end with an alphanumeric character (e.g. "
            "'my-name',  or 'abc-123', regex used for validation is "
            "'[a-z]([-a-z0-9]*[a-z0-9])?')"});
  CHECK(orch::IsQualifiedName("").size() == 2);  // non-empty and the regex
  CHECK(orch::IsValidLabelValue("").empty());
}
