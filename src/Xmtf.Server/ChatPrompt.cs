namespace Xmtf.Server;

/// <summary>
/// mT0 and BLOOMZ are instruction-tuned, not chat-tuned: they answer one prompt. A conversation becomes that
/// prompt like this: a single message is the prompt as it is (so a one-message chat gives exactly the
/// completion of its text); several become a transcript, one "Role: content" line each (System, User,
/// Assistant, as the role names them), ending with "Assistant:" for the model to continue.
/// </summary>
public static class ChatPrompt
{
    /// <summary>The prompt for a conversation of (role, content) messages.</summary>
    public static string Format(IReadOnlyList<(string Role, string Content)> messages)
    {
        if (messages.Count == 0) throw new ApiException(422, "messages must not be empty");
        if (messages.Count == 1) return messages[0].Content;
        var lines = messages.Select(m => $"{Title(m.Role)}: {m.Content}");
        return string.Join("\n", lines) + "\nAssistant:";
    }

    static string Title(string role) => role.Length == 0 ? role : char.ToUpperInvariant(role[0]) + role[1..];
}
